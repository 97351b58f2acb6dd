module corp.example/app

go 1.26

require (
	example.com/good v1.0.0
	example.com/vuln v1.2.4
	example.com/accepted v1.0.0
)
