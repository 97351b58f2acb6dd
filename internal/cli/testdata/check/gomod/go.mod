module corp.example/app

go 1.26

require (
	example.com/good v1.0.0
	example.com/old v1.0.0
	corp.example/local v0.0.0
)

replace example.com/old => example.com/evil v1.0.0

replace corp.example/local => ../local
