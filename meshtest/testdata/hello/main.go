// Command hello is a tiny program for the meshtest process helper tests: it
// prints its arguments and one environment variable, then, given the argument
// "wait", runs until SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	fmt.Printf("hello args=%s greeting=%q\n", strings.Join(os.Args[1:], ","), os.Getenv("MESH_GREETING"))
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		<-sigs
		fmt.Println("terminated")
	}
}
