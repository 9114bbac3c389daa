package sdk

import "sync/atomic"

// Stats are a Client's counters since New, and the queue's current size.
// Every event that was recorded ends in exactly one of Sent or a Dropped
// counter, or is still queued (or, after a restart, is counted by the next
// Client).
type Stats struct {
	// QueuedEvents and QueuedBytes are the events waiting in the queue and
	// their size on disk.
	QueuedEvents int64
	QueuedBytes  int64
	// RecordedEvents were written to the queue.
	RecordedEvents int64
	// SentEvents were accepted by the collector.
	SentEvents int64
	// SentBatches were accepted by the collector.
	SentBatches int64
	// Retries are failed sends that will be tried again.
	Retries int64
	// DroppedEvicted were dropped, oldest first, because the queue
	// reached Config.MaxQueueBytes.
	DroppedEvicted int64
	// DroppedTooOld were older than Config.MaxEventAgeMs when their turn
	// came, and were not sent.
	DroppedTooOld int64
	// DroppedPermanentError were in batches the collector refused for a
	// reason a retry cannot fix (a malformed batch, a wrong app).
	DroppedPermanentError int64
	// DroppedServer were dropped by the collector for a per-event reason
	// (an invalid field, a scope the consent does not cover).
	DroppedServer int64
	// DroppedPurged were deleted from the queue because consent was
	// revoked or ended, or narrowed to scopes that do not cover them.
	DroppedPurged int64
	// DroppedCorrupt were records found torn or corrupted on disk.
	DroppedCorrupt int64
	// PendingRevocations are revocations not yet confirmed by the
	// collector.
	PendingRevocations int64
}

// counters are the Client's atomic counters.
type counters struct {
	recorded, sent, batches, retries                         atomic.Int64
	evicted, tooOld, permanent, server, purged, corruptCount atomic.Int64
}

func (c *counters) addEvicted(n int) { c.evicted.Add(int64(n)) }
func (c *counters) addCorrupt(n int) { c.corruptCount.Add(int64(n)) }
