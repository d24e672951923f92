package daemon

import (
	"github.com/hotcast/hotcast/internal/hugeheap"
)

// prepareHeap marks the Go heap for transparent huge pages at start, when
// hotcastd may be a standby (an RBS service is configured) and the kernel's
// THP mode is madvise: a standby's first batch writes ~70 MB of fresh
// state, which this VM class faults in 4 KiB at a time otherwise
// (internal/hugeheap, bench/rbs.md). HOTCAST_NO_THP=1 turns it off. It
// never fails the start: what it did, or why not, is logged. With a fake
// System (the logic tests) it does nothing: the process is not a daemon's.
func (d *Daemon) prepareHeap() {
	if _, real := d.sys.(Kernel); !real || len(d.cfg.Services) == 0 {
		return
	}
	d.heapOnce.Do(func() {
		r := hugeheap.Setup(hugeheap.Options{})
		log := d.log.With("component", "heap", "thp", string(r.Mode))
		switch {
		case r.Err != nil: // the daemon runs on, its heap as the runtime made it (or marked in part)
			log.Warn("heap not (fully) marked for transparent huge pages", "reason", r.Reason, "err", r.Err, "marked_mib", r.MarkedBytes>>20)
		case r.Applied:
			log.Info("heap marked for transparent huge pages", "marked_mib", r.MarkedBytes>>20, "eligible_mib", r.EligibleBytes>>20,
				"reserve_mib", r.Reserve>>20, "took", r.Took)
		default:
			log.Info("heap not marked for transparent huge pages", "reason", r.Reason)
		}
	})
}
