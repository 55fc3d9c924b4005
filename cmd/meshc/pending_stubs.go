package main

// Commands whose owners have not landed them yet. Each owner deletes its line
// here when adding the real implementation in its own file.

import "errors"

var errNotBuilt = errors.New("this command is not built yet")
