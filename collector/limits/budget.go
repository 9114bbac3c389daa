package limits

import (
	"sync"
	"sync/atomic"
)

// Budget is a byte budget shared by concurrent requests: each takes what
// it costs before it does the work (TryAcquire), and gives it back when
// done. A request that does not fit is refused, so a client cannot queue
// work (or memory) behind the bound. Bytes that arrive whether or not
// they fit (a connection's reads) are charged with Add; their owner
// checks Over.
type Budget struct {
	limit int64

	mu      sync.Mutex
	used    int64
	peak    int64
	refused atomic.Uint64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// TryAcquire takes n bytes if they fit, and reports whether they did.
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n < 0 || b.used+n > b.limit {
		b.refused.Add(1)
		return false
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return true
}

// Add takes n bytes whether or not they fit.
func (b *Budget) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used += n
	b.peak = max(b.peak, b.used)
}

// Release gives n bytes back.
func (b *Budget) Release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.used < 0 {
		panic("limits: budget released more than was acquired")
	}
}

// Full reports whether nothing is left.
func (b *Budget) Full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used >= b.limit
}

// Over reports whether more than the limit is taken (by Add).
func (b *Budget) Over() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used > b.limit
}

// Limit returns the budget's size.
func (b *Budget) Limit() int64 { return b.limit }

// InUse returns the bytes taken now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak returns the most bytes ever taken at once.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Refused returns how many TryAcquire calls did not fit.
func (b *Budget) Refused() uint64 { return b.refused.Load() }

// Busy reports whether less than n bytes are free.
func (b *Budget) Busy(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used+n > b.limit
}
