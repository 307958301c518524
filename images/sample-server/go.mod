module example.com/sample-server

go 1.19
