module x

require (
	github.com/a/b
)
