// Command hello is a tiny program for the meshtest process helper tests: it
// prints its arguments and one environment variable, then, given the argument
// "wait", runs until SIGTERM. The printed line is its ready line, so it is
// written only once the SIGTERM handler is installed: a signal sent the
// instant the line appears is always handled.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	wait := len(os.Args) > 1 && os.Args[1] == "wait"
	var sigs chan os.Signal
	if wait {
		sigs = make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
	}
	fmt.Printf("hello args=%s greeting=%q\n", strings.Join(os.Args[1:], ","), os.Getenv("MESH_GREETING"))
	if wait {
		<-sigs
		fmt.Println("terminated")
	}
}
