package api

import (
	"sync"
	"time"
)

// Login throttling. Failed sign-ins are counted in fixed windows under three
// keys, and a key that reached its limit is refused (429, Retry-After) until its
// window ends:
//   - account and client address: a guesser at one account from one place;
//   - client address: one place guessing at many accounts;
//   - account, from anywhere: many places guessing at one account. Its limit is
//     high, so that strangers cannot easily lock the owner out.
//
// Refused attempts are not counted, so a flood of failures locks a key for at
// most one window, never longer. A success clears the account-and-address count.
// Counts live in this process; several servers each keep their own.

// ThrottleLimits sets the limits; the zero value means DefaultThrottleLimits.
type ThrottleLimits struct {
	Window          time.Duration
	PerAccountAndIP int
	PerIP           int
	PerAccount      int
}

// DefaultThrottleLimits: 5 failures per account and address, 20 per address and
// 50 per account in 15 minutes.
var DefaultThrottleLimits = ThrottleLimits{Window: 15 * time.Minute, PerAccountAndIP: 5, PerIP: 20, PerAccount: 50}

type throttle struct {
	limits ThrottleLimits
	now    func() time.Time

	mu      sync.Mutex
	windows map[string]*failureWindow
}

type failureWindow struct {
	start    time.Time
	failures int
}

// maxThrottleKeys bounds memory under a flood from many addresses.
const maxThrottleKeys = 100_000

func newThrottle(limits ThrottleLimits) *throttle {
	if limits == (ThrottleLimits{}) {
		limits = DefaultThrottleLimits
	}
	return &throttle{limits: limits, now: time.Now, windows: make(map[string]*failureWindow)}
}

// throttleKey is one counter and its limit.
type throttleKey struct {
	key   string
	limit int
}

func (t *throttle) keys(account, ip string) [3]throttleKey {
	return [3]throttleKey{
		{"account+ip\x00" + account + "\x00" + ip, t.limits.PerAccountAndIP},
		{"ip\x00" + ip, t.limits.PerIP},
		{"account\x00" + account, t.limits.PerAccount},
	}
}

// check returns a *TooManyRequestsError if any key is over its limit.
func (t *throttle) check(account, ip string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range t.keys(account, ip) {
		w, ok := t.windows[k.key]
		if !ok || now.Sub(w.start) >= t.limits.Window || w.failures < k.limit {
			continue
		}
		wait = max(wait, w.start.Add(t.limits.Window).Sub(now))
	}
	if wait > 0 {
		return &TooManyRequestsError{RetryAfter: wait}
	}
	return nil
}

// failed counts a failed attempt under every key.
func (t *throttle) failed(account, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.windows) >= maxThrottleKeys {
		t.prune(now)
	}
	for _, k := range t.keys(account, ip) {
		w, ok := t.windows[k.key]
		if !ok || now.Sub(w.start) >= t.limits.Window {
			w = &failureWindow{start: now}
			t.windows[k.key] = w
		}
		w.failures++
	}
}

// succeeded clears the account-and-address count: the owner got in.
func (t *throttle) succeeded(account, ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.windows, t.keys(account, ip)[0].key)
}

func (t *throttle) prune(now time.Time) {
	for k, w := range t.windows {
		if now.Sub(w.start) >= t.limits.Window {
			delete(t.windows, k)
		}
	}
	if len(t.windows) >= maxThrottleKeys {
		// Still full of live windows: forget them rather than grow without bound.
		clear(t.windows)
	}
}
