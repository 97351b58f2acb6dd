module corp.example/app

go 1.26

require (
	example.com/agpl v1.0.0
	example.com/evil v1.0.0
	example.com/good v1.0.0
	example.com/lib v1.5.0
	example.com/vuln v1.2.3
	example.com/young v1.0.0
	corp.example/internal v0.1.0
)
