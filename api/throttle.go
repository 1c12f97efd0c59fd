package api

import (
	"cmp"
	"slices"
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

	maxKeys int // maxThrottleKeys; tests lower it

	mu      sync.Mutex
	windows map[string]*failureWindow
	// While the map is full of windows that must stay (see makeRoom): no
	// new scan before noRoomUntil; a window ends at noRoomRetry.
	noRoomUntil, noRoomRetry time.Time
	// full tells the operator, at most once a minute (warnedFull), that
	// the map is full of windows that must stay and new sign-ins are refused
	// until the given time: the mark of a large guessing attack, or of
	// limits too tight for the traffic.
	full       func(until time.Time)
	warnedFull time.Time
}

type failureWindow struct {
	start    time.Time
	failures int
	inFlight int // attempts let through and not yet decided
	limit    int // its key's: a window at its limit is locked and never evicted
}

// maxThrottleKeys bounds memory under a flood from many addresses: keys hold
// at most a 254-character email, so the map stays within tens of MiB.
const maxThrottleKeys = 100_000

func newThrottle(limits ThrottleLimits) *throttle {
	if limits == (ThrottleLimits{}) {
		limits = DefaultThrottleLimits
	}
	return &throttle{limits: limits, now: time.Now, maxKeys: maxThrottleKeys, windows: make(map[string]*failureWindow)}
}

// throttleKey is one counter and its limit.
type throttleKey struct {
	key   string
	limit int
}

// keysPerAttempt is how many windows one attempt may add.
const keysPerAttempt = 3

func (t *throttle) keys(account, ip string) [keysPerAttempt]throttleKey {
	return [keysPerAttempt]throttleKey{
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
//
// Only an attempt let through to the password check adds windows (one that
// then finds the hashing queue full, or its client gone, costs no hash, but
// those are bounded by the queue and by connections): a refused one costs its
// client nothing, so it must not cost memory either, or a flood of refusals
// with new emails would fill the map (see makeRoom).
func (t *throttle) begin(account, ip string) (*attempt, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	keys := t.keys(account, ip)
	var wait time.Duration
	missing := 0
	for _, k := range keys {
		w := t.window(k.key, now)
		if w == nil {
			missing++
			w = &failureWindow{start: now} // looked at, not stored
		}
		switch {
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
	if missing > 0 && len(t.windows)+missing > t.maxKeys {
		if wait := t.makeRoom(now, missing); wait > 0 {
			return nil, &TooManyRequestsError{RetryAfter: wait}
		}
	}
	for _, k := range keys {
		// Looked up again: making room may have evicted an idle window of
		// this attempt's (its count was under the limit, so the verdict stands).
		w := t.window(k.key, now)
		if w == nil {
			w = &failureWindow{start: now, limit: k.limit}
			t.windows[k.key] = w
		}
		w.inFlight++
	}
	return &attempt{t: t, account: account, ip: ip}, nil
}

// window returns key's current window, started anew when the last one ended,
// or nil when key has none. It never adds one. Call with mu held.
func (t *throttle) window(key string, now time.Time) *failureWindow {
	w := t.windows[key]
	if w != nil && now.Sub(w.start) >= t.limits.Window {
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
		if w == nil {
			continue // cannot be: a window with an attempt in flight is never evicted
		}
		w.inFlight = max(w.inFlight-1, 0)
		switch {
		case o == outcomeFailed:
			w.failures++
		case o == outcomeSucceeded && i == 0:
			w.failures = 0
		}
	}
}

// makeRoom evicts windows so that need new ones fit, or returns how long until
// there may be room; call it with mu held when the map is full.
//
// Memory stays bounded, and no lockout is forgotten to keep it so:
//   - ended windows go first, as they hold nothing;
//   - then idle windows under their limit, fewest failures first: that hands
//     back at most limit-1 guesses per key, and only to someone who paid for
//     the room with attempts let through to the password check (at most 3
//     windows each);
//   - locked windows, and any with an attempt in flight, stay. When they alone
//     fill the map, attempts that would add a window are refused until the
//     earliest of them ends (attempts whose windows all exist still go
//     through). That is failing closed: an attacker with many addresses (an
//     IPv6 prefix holds plenty) and the CPU for hundreds of thousands of hashes
//     in one window (a locked window costs at least PerAccountAndIP failures)
//     could keep sign-ins from new places out for a while, but never win back
//     guesses at a locked account. Clearing the map instead gave those back to
//     anyone who could send 50,000 cheap refused sign-ins.
//
// Evicting down to 90% of the cap, and scanning a full map of locked windows
// at most once a second, keep the cost of a scan of the map rare.
func (t *throttle) makeRoom(now time.Time, need int) time.Duration {
	if now.Before(t.noRoomUntil) {
		return max(t.noRoomRetry.Sub(now), time.Second)
	}
	var idle []string // under the limit, none in flight: evictable
	earliestEnd := now.Add(t.limits.Window)
	for k, w := range t.windows {
		end := w.start.Add(t.limits.Window)
		switch {
		case w.inFlight > 0:
			continue // stays, and frees no room before its attempt ends
		case !now.Before(end):
			delete(t.windows, k)
			continue
		case w.failures < w.limit:
			idle = append(idle, k)
		}
		if end.Before(earliestEnd) {
			earliestEnd = end
		}
	}
	target := t.maxKeys - max(t.maxKeys/10, keysPerAttempt)
	if excess := len(t.windows) - target; excess > 0 && len(idle) > 0 {
		slices.SortFunc(idle, func(a, b string) int {
			wa, wb := t.windows[a], t.windows[b]
			return cmp.Or(cmp.Compare(wa.failures, wb.failures), wa.start.Compare(wb.start))
		})
		for _, k := range idle[:min(excess, len(idle))] {
			delete(t.windows, k)
		}
	}
	if len(t.windows)+need <= t.maxKeys {
		return 0
	}
	// Full of windows that must stay: in a second an attempt in flight may
	// have ended, leaving its window idle; by earliestEnd a window certainly
	// ends.
	t.noRoomRetry = earliestEnd
	if t.full != nil && now.Sub(t.warnedFull) >= time.Minute {
		t.warnedFull = now
		t.full(earliestEnd)
	}
	t.noRoomUntil = now.Add(time.Second)
	if earliestEnd.Before(t.noRoomUntil) {
		t.noRoomUntil = earliestEnd
	}
	return max(earliestEnd.Sub(now), time.Second)
}
