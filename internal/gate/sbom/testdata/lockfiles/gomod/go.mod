module example.com/shop

go 1.22

require (
	github.com/gin-gonic/gin v1.9.0
	golang.org/x/net v0.17.0 // indirect
)

require github.com/old/dep v1.0.0

replace github.com/old/dep => github.com/new/dep v1.2.0
