package pim

import "time"

// The LAN Prune Delay computations of RFC 7761 §4.3.3 and the randomised
// join timers of §4.11 that depend on them. The lower-case functions run
// with the mutex held.

// lanDelayEnabled: every router on the link, this one included, sends the
// LAN Prune Delay option.
func (i *Interface) lanDelayEnabled() bool {
	if !i.cfg.SendLANPruneDelay {
		return false
	}
	for _, n := range i.neighbors {
		if n.LANPruneDelay == nil {
			return false
		}
	}
	return true
}

// effectivePropagationDelay is the largest Propagation_Delay on the link
// (this router's included) when lan_delay_enabled, else
// Propagation_delay_default.
func (i *Interface) effectivePropagationDelay() time.Duration {
	if !i.lanDelayEnabled() {
		return DefaultPropagationDelay
	}
	d := i.cfg.PropagationDelay
	for _, n := range i.neighbors {
		d = max(d, time.Duration(n.LANPruneDelay.PropagationDelay)*time.Millisecond)
	}
	return d
}

// effectiveOverrideInterval is the largest Override_Interval on the link
// (this router's included) when lan_delay_enabled, else t_override_default.
func (i *Interface) effectiveOverrideInterval() time.Duration {
	if !i.lanDelayEnabled() {
		return DefaultOverrideInterval
	}
	d := i.cfg.OverrideInterval
	for _, n := range i.neighbors {
		d = max(d, time.Duration(n.LANPruneDelay.OverrideInterval)*time.Millisecond)
	}
	return d
}

// suppressionEnabled: join suppression is off only when lan_delay_enabled
// and every router on the link, this one included, sets the T bit.
func (i *Interface) suppressionEnabled() bool {
	if !i.lanDelayEnabled() || !i.cfg.Tracking {
		return true
	}
	for _, n := range i.neighbors {
		if !n.LANPruneDelay.Tracking {
			return true
		}
	}
	return false
}

// LANDelayEnabled reports lan_delay_enabled(I): every router on the link
// sends the LAN Prune Delay option (RFC 7761 §4.3.3).
func (i *Interface) LANDelayEnabled() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.lanDelayEnabled()
}

// EffectivePropagationDelay is Effective_Propagation_Delay(I) (§4.3.3).
func (i *Interface) EffectivePropagationDelay() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.effectivePropagationDelay()
}

// EffectiveOverrideInterval is Effective_Override_Interval(I) (§4.3.3).
func (i *Interface) EffectiveOverrideInterval() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.effectiveOverrideInterval()
}

// SuppressionEnabled is Suppression_Enabled(I) (§4.3.3).
func (i *Interface) SuppressionEnabled() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.suppressionEnabled()
}

// JPOverrideInterval is J/P_Override_Interval(I) =
// Effective_Propagation_Delay(I) + Effective_Override_Interval(I) (§4.11):
// how long an upstream router waits for a Join overriding a Prune (the
// Prune-Pending Timer, §4.5.1).
func (i *Interface) JPOverrideInterval() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.effectivePropagationDelay() + i.effectiveOverrideInterval()
}

// TOverride draws t_override = rand(0, Effective_Override_Interval(I))
// (§4.11): the delay before a Join that overrides a neighbour's Prune.
func (i *Interface) TOverride() time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.randDelay(i.effectiveOverrideInterval())
}

// TSuppressed draws t_suppressed = rand(1.1 × tPeriodic, 1.4 × tPeriodic)
// when Suppression_Enabled(I), else 0 (§4.11): how long a router holds
// off its own periodic Join after seeing an equivalent one.
func (i *Interface) TSuppressed(tPeriodic time.Duration) time.Duration {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.suppressionEnabled() {
		return 0
	}
	lo := tPeriodic * 11 / 10
	return lo + i.randDelay(tPeriodic*14/10-lo)
}
