package daemon

import (
	"errors"

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
			d.prefault.Store(r.Prefaulter())
		default:
			log.Info("heap not marked for transparent huge pages", "reason", r.Reason)
		}
	})
}

// batchBegin is the RBS receiver's word that a batch of count entries
// begins (rbs.Config.BatchBegin): the heap it will take is made resident
// on a goroutine of its own while the entries arrive, where fresh memory
// is dear (internal/hugeheap, bench/rbs.md). Small batches, or a heap
// not marked, start nothing.
func (d *Daemon) batchBegin(backupID uint32, count int) {
	pf := d.prefault.Load()
	if pf == nil {
		return
	}
	log := d.log.With("component", "heap", "backup_id", backupID, "entries", count)
	err := pf.Start(hugeheap.BatchBytes(count), func(p hugeheap.Populated) {
		if p.Err != nil {
			log.Warn("heap prefault for a batch stopped", "prefaulted_mib", p.Bytes()>>20, "took", p.Took, "err", p.Err)
			return
		}
		log.Info("heap prefaulted for a batch", "prefaulted_mib", p.Bytes()>>20, "page_faults", p.Faults, "took", p.Took)
	})
	if errors.Is(err, hugeheap.ErrBusy) {
		log.Debug("heap prefault for a batch skipped: one runs")
	}
}
