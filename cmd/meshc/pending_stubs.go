package main

// Commands whose owners have not landed them yet. Each owner deletes its line
// here when adding the real implementation in its own file.

import (
	"context"
	"errors"
	"io"
)

var errNotBuilt = errors.New("this command is not built yet")

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error    { return errNotBuilt }
func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error   { return errNotBuilt }
func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error    { return errNotBuilt }
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error { return errNotBuilt }
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error { return errNotBuilt }
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error { return errNotBuilt }
