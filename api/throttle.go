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
// most one window, never longer. Attempts in flight count against the limits
// too (see begin). A success clears the account-and-address count.
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
	inFlight int // attempts let through and not yet decided
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

// attempt is one sign-in attempt let through the throttle. Exactly one of
// failed and succeeded decides it; end, deferred, gives back an attempt that
// neither decided (the check could not be made).
type attempt struct {
	t           *throttle
	account, ip string
	decided     bool
}

// begin lets an attempt through, counted as in flight under every key, or
// refuses it with a *TooManyRequestsError when a key's failures and attempts
// in flight reach its limit. Counting attempts before their passwords are
// checked keeps parallel guesses to the limit: counting failures alone let
// every guess already waiting for the hash through.
func (t *throttle) begin(account, ip string) (*attempt, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range t.keys(account, ip) {
		switch w := t.window(k.key, now); {
		case w.failures >= k.limit:
			wait = max(wait, w.start.Add(t.limits.Window).Sub(now))
		case w.failures+w.inFlight >= k.limit:
			// The attempts in flight decide: in about the time of a hash.
			wait = max(wait, time.Second)
		}
	}
	if wait > 0 {
		return nil, &TooManyRequestsError{RetryAfter: wait}
	}
	for _, k := range t.keys(account, ip) {
		t.window(k.key, now).inFlight++ // not the map: a prune may have cleared it
	}
	return &attempt{t: t, account: account, ip: ip}, nil
}

// window returns key's current window, started anew when the last one ended.
// Call with mu held.
func (t *throttle) window(key string, now time.Time) *failureWindow {
	w, ok := t.windows[key]
	switch {
	case !ok:
		if len(t.windows) >= maxThrottleKeys {
			t.prune(now)
		}
		w = &failureWindow{start: now}
		t.windows[key] = w
	case now.Sub(w.start) >= t.limits.Window:
		w.start, w.failures = now, 0
	}
	return w
}

// failed counts the attempt as a failure under every key.
func (a *attempt) failed() { a.decide(outcomeFailed) }

// succeeded clears the account-and-address count: the owner got in.
func (a *attempt) succeeded() { a.decide(outcomeSucceeded) }

// end gives back an attempt that was not decided; defer it after begin.
func (a *attempt) end() { a.decide(outcomeNone) }

type outcome int

const (
	outcomeNone outcome = iota
	outcomeFailed
	outcomeSucceeded
)

func (a *attempt) decide(o outcome) {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.decided {
		return
	}
	a.decided = true
	now := t.now()
	for i, k := range t.keys(a.account, a.ip) {
		w := t.window(k.key, now)
		w.inFlight = max(w.inFlight-1, 0)
		switch {
		case o == outcomeFailed:
			w.failures++
		case o == outcomeSucceeded && i == 0:
			w.failures = 0
		}
	}
}

func (t *throttle) prune(now time.Time) {
	for k, w := range t.windows {
		if now.Sub(w.start) >= t.limits.Window && w.inFlight == 0 {
			delete(t.windows, k)
		}
	}
	if len(t.windows) >= maxThrottleKeys {
		// Still full of live windows: forget them rather than grow without bound.
		clear(t.windows)
	}
}
