//go:build !linux

package chdb

import (
	"errors"
	"runtime"
)

// library is a stand-in: chDB is only loaded on Linux.
type library struct{}

func load(path string) (*library, error) {
	return nil, errors.New("chDB is only supported on linux, not " + runtime.GOOS)
}

func acquire() error { return nil }

func release() {}

func (l *library) connectArgs(args []string) (*uintptr, error) {
	return nil, errors.New("chDB is only supported on linux")
}

func (l *library) run(conn uintptr, sql, format string) (string, error) {
	return "", errors.New("chDB is only supported on linux")
}

func (l *library) close(conn *uintptr) {}
