// Command api serves the greeter API.
package main

import (
	"fmt"

	"github.com/google/uuid"
)

func main() { fmt.Println("request", uuid.NewString()) }
