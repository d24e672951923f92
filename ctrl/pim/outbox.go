package pim

import "sync"

// outbox holds what a state change wants done outside the lock (sends,
// events, route updates), in the order the state changed. It is guarded
// by its owner's mutex.
type outbox[T any] struct {
	items    []T
	draining bool
}

func (o *outbox[T]) add(it T) { o.items = append(o.items, it) }

// unlock releases mu (held) after delivering the queued items without it.
// Only one goroutine drains at a time, so deliveries keep their order; a
// caller that finds another draining leaves its items to it. deliver
// returns the failed sends, added to *txErrors under mu.
func (o *outbox[T]) unlock(mu *sync.Mutex, deliver func([]T) uint64, txErrors *uint64) {
	if o.draining {
		mu.Unlock()
		return
	}
	o.draining = true
	for {
		items := o.items
		o.items = nil
		if len(items) == 0 {
			o.draining = false
			mu.Unlock()
			return
		}
		mu.Unlock()
		errs := deliver(items)
		mu.Lock()
		*txErrors += errs
	}
}
