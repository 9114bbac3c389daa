//go:build !unix

package spool

import "os"

// lockFile does nothing where flock is not available: the caller must not
// open one directory twice.
func lockFile(*os.File) error { return nil }
