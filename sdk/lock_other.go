//go:build !unix

package sdk

// dirLock does nothing where flock is not available; only one Client may
// use a folder at a time.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() error { return nil }
