package pipeline

import "errors"

// Sentinel errors that stages return and the edge (collector/status.go)
// maps to gRPC and HTTP statuses. Wrap them with context:
// fmt.Errorf("insert sessions: %w", ErrStorageUnavailable).
var (
	// ErrOverloaded means the stage is at capacity; the client should retry
	// after a delay. Maps to RESOURCE_EXHAUSTED with a retry delay.
	ErrOverloaded = errors.New("collector overloaded")
	// ErrStorageUnavailable means storage failed and the rows are not
	// durable; the client should retry with backoff. Maps to UNAVAILABLE.
	ErrStorageUnavailable = errors.New("storage unavailable")
	// ErrClosed means the stage is shutting down. Maps to UNAVAILABLE.
	ErrClosed = errors.New("collector shutting down")
)
