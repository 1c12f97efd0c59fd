package api

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeClock is the throttle's clock in these tests: time moves only when a
// test says so, so that windows end exactly when a test expects them to,
// however slow the machine.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestThrottle(limits ThrottleLimits) (*throttle, *fakeClock) {
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	th := newThrottle(limits)
	th.now = clock.now
	return th, clock
}

// try begins an attempt and decides it as outcome; it returns the refusal's
// Retry-After, or 0 when the attempt was let through.
func try(t *testing.T, th *throttle, account, ip string, o outcome) time.Duration {
	t.Helper()
	a, err := th.begin(account, ip)
	if err != nil {
		var tooMany *TooManyRequestsError
		if !errors.As(err, &tooMany) || tooMany.RetryAfter <= 0 {
			t.Fatalf("begin(%q, %q): %v, want a *TooManyRequestsError with a Retry-After", account, ip, err)
		}
		return tooMany.RetryAfter
	}
	a.decide(o)
	return 0
}

// The counting, the windows and the end of a lockout, step by step on a
// clock that only the test moves.
func TestThrottleWindows(t *testing.T) {
	const window = 10 * time.Minute
	limits := ThrottleLimits{Window: window, PerAccountAndIP: 3, PerIP: 6, PerAccount: 8}
	const (
		ada, bob = "ada@example.com", "bob@example.com"
		home     = "192.0.2.1"
	)
	type step struct {
		what        string
		advance     time.Duration // before the attempt
		account, ip string
		outcome     outcome
		retry       time.Duration // 0: let through; else refused with this Retry-After
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a lockout lasts until its window ends, not from the last attempt", []step{
			{what: "1st failure", account: ada, ip: home, outcome: outcomeFailed},
			{what: "2nd failure", advance: time.Minute, account: ada, ip: home, outcome: outcomeFailed},
			{what: "3rd failure", advance: time.Minute, account: ada, ip: home, outcome: outcomeFailed},
			{what: "the right password, over the limit", advance: time.Minute, account: ada, ip: home, outcome: outcomeSucceeded, retry: window - 3*time.Minute},
			{what: "a flood while locked is not counted", advance: time.Minute, account: ada, ip: home, outcome: outcomeFailed, retry: window - 4*time.Minute},
			{what: "nor does it extend the lock", advance: 5 * time.Minute, account: ada, ip: home, outcome: outcomeFailed, retry: window - 9*time.Minute},
			{what: "a moment before the window ends", advance: time.Minute - time.Nanosecond, account: ada, ip: home, outcome: outcomeSucceeded, retry: time.Nanosecond},
			{what: "when the window ends", advance: time.Nanosecond, account: ada, ip: home, outcome: outcomeSucceeded},
		}},
		{"a success clears the count of its account and address", []step{
			{what: "1st failure", account: ada, ip: home, outcome: outcomeFailed},
			{what: "2nd failure", account: ada, ip: home, outcome: outcomeFailed},
			{what: "the owner signs in", account: ada, ip: home, outcome: outcomeSucceeded},
			{what: "1st failure after", account: ada, ip: home, outcome: outcomeFailed},
			{what: "2nd failure after", account: ada, ip: home, outcome: outcomeFailed},
			{what: "3rd failure after", account: ada, ip: home, outcome: outcomeFailed},
			{what: "then locked", account: ada, ip: home, outcome: outcomeSucceeded, retry: window},
		}},
		{"accounts have their own counts, up to the address's limit", []step{
			{account: ada, ip: home, outcome: outcomeFailed},
			{account: ada, ip: home, outcome: outcomeFailed},
			{account: ada, ip: home, outcome: outcomeFailed},
			{what: "ada is locked", account: ada, ip: home, retry: window},
			{what: "bob is not", account: bob, ip: home, outcome: outcomeFailed},
			{account: "carol@example.com", ip: home, outcome: outcomeFailed},
			{account: "dave@example.com", ip: home, outcome: outcomeFailed},
			{what: "6 failures from the address lock it for everyone", account: "erin@example.com", ip: home, retry: window},
			{what: "but not the accounts elsewhere", account: bob, ip: "192.0.2.2", outcome: outcomeSucceeded},
		}},
		{"an account has a limit from everywhere", []step{
			{account: ada, ip: "198.51.100.1", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.2", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.3", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.4", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.5", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.6", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.7", outcome: outcomeFailed},
			{account: ada, ip: "198.51.100.8", outcome: outcomeFailed},
			{what: "the 9th place", advance: time.Minute, account: ada, ip: "198.51.100.9", retry: window - time.Minute},
			{what: "the owner's place too", account: ada, ip: home, retry: window - time.Minute},
			{what: "the window ends", advance: window - time.Minute, account: ada, ip: home, outcome: outcomeSucceeded},
		}},
		{"an attempt neither failed nor succeeded is not counted", []step{
			{account: ada, ip: home, outcome: outcomeNone},
			{account: ada, ip: home, outcome: outcomeNone},
			{account: ada, ip: home, outcome: outcomeNone},
			{account: ada, ip: home, outcome: outcomeNone},
			{account: ada, ip: home, outcome: outcomeFailed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, clock := newTestThrottle(limits)
			for i, s := range tt.steps {
				clock.advance(s.advance)
				if got := try(t, th, s.account, s.ip, s.outcome); got != s.retry {
					t.Fatalf("step %d (%s): Retry-After %v, want %v (0: let through)", i+1, s.what, got, s.retry)
				}
			}
		})
	}
}

// Attempts in flight count against the limits (parallel guesses), and one
// given back without a verdict frees its place.
func TestThrottleAttemptsInFlight(t *testing.T) {
	th, _ := newTestThrottle(ThrottleLimits{Window: time.Hour, PerAccountAndIP: 3, PerIP: 10, PerAccount: 10})
	var running []*attempt
	for range 3 {
		a, err := th.begin("ada@example.com", "192.0.2.1")
		if err != nil {
			t.Fatalf("attempt under the limit: %v", err)
		}
		running = append(running, a)
	}
	_, err := th.begin("ada@example.com", "192.0.2.1")
	var tooMany *TooManyRequestsError
	if !errors.As(err, &tooMany) || tooMany.RetryAfter != time.Second {
		t.Fatalf("a 4th attempt while 3 are in flight: %v, want a 429 with Retry-After 1s", err)
	}
	running[0].end()
	running[0].failed() // decided already: no effect
	if _, err := th.begin("ada@example.com", "192.0.2.1"); err != nil {
		t.Fatalf("an attempt after one in flight was given back: %v", err)
	}
}

// A lockout must survive any number of refused attempts: refusals cost the
// client no password hash, so they must cost the throttle no memory either.
// (They used to add windows for their keys, and a full map was cleared,
// lockouts with it: 50,000 refused sign-ins with new emails gave a locked
// account 5 more guesses.)
func TestThrottleRefusalsDoNotFillTheMap(t *testing.T) {
	th, clock := newTestThrottle(DefaultThrottleLimits)
	const attacker, victim = "203.0.113.9", "victim@example.com"
	for range DefaultThrottleLimits.PerAccountAndIP {
		try(t, th, victim, attacker, outcomeFailed)
	}
	// And the attacker's address too, so that every new email is refused.
	for i := DefaultThrottleLimits.PerAccountAndIP; i < DefaultThrottleLimits.PerIP; i++ {
		try(t, th, fmt.Sprintf("other%d@example.com", i), attacker, outcomeFailed)
	}
	before := len(th.windows)
	for i := range 2 * maxThrottleKeys {
		if try(t, th, fmt.Sprintf("flood%d@example.com", i), attacker, outcomeFailed) == 0 {
			t.Fatalf("attempt %d from a locked address was let through", i)
		}
	}
	if len(th.windows) != before {
		t.Errorf("%d refused attempts took the throttle from %d windows to %d", 2*maxThrottleKeys, before, len(th.windows))
	}
	clock.advance(time.Minute)
	if try(t, th, victim, attacker, outcomeSucceeded) == 0 {
		t.Fatal("the victim's lockout was forgotten after a flood of refused attempts")
	}
}

// At its cap, the throttle makes room by evicting ended windows, then idle
// ones under their limit, never a lockout.
func TestThrottleFullEvictsWhatIsNotLocked(t *testing.T) {
	th, clock := newTestThrottle(DefaultThrottleLimits)
	th.maxKeys = 60
	const attacker, victim = "203.0.113.9", "victim@example.com"
	for range DefaultThrottleLimits.PerAccountAndIP {
		try(t, th, victim, attacker, outcomeFailed)
	}
	// Owners signing in from everywhere, each adding 3 windows under their
	// limits, many times the cap.
	for i := range 10 * th.maxKeys {
		clock.advance(time.Second)
		if try(t, th, fmt.Sprintf("user%d@example.com", i%50), fmt.Sprintf("198.51.100.%d", i%250), outcomeFailed) != 0 {
			t.Fatalf("sign-in %d was refused, with room to make", i)
		}
		if len(th.windows) > th.maxKeys {
			t.Fatalf("%d windows, over the cap of %d", len(th.windows), th.maxKeys)
		}
	}
	if clock.t.Sub(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) >= DefaultThrottleLimits.Window {
		t.Fatal("the test took the clock past the victim's window")
	}
	if try(t, th, victim, attacker, outcomeSucceeded) == 0 {
		t.Error("the victim's lockout was evicted to make room")
	}
}

// When locked windows alone fill the map, an attempt that would add a window
// is refused until one ends (failing closed), and the lockouts stay.
func TestThrottleFullOfLockoutsFailsClosed(t *testing.T) {
	const window = 15 * time.Minute
	th, clock := newTestThrottle(ThrottleLimits{Window: window, PerAccountAndIP: 1, PerIP: 1, PerAccount: 1})
	th.maxKeys = 30
	var warnings []time.Time // the operator is told, at most once a minute
	th.full = func(until time.Time) { warnings = append(warnings, until) }
	// Each failure locks its 3 windows: 10 fill the map.
	for i := range 10 {
		clock.advance(time.Second)
		if try(t, th, fmt.Sprintf("user%d@example.com", i), fmt.Sprintf("198.51.100.%d", i), outcomeFailed) != 0 {
			t.Fatalf("failure %d refused before the map was full", i)
		}
	}
	clock.advance(time.Minute)
	// The first lockout ends at window + 1s from the start; it is now 10s + 1m.
	firstEnds := window + time.Second - (10*time.Second + time.Minute)
	for i := range 100 {
		if got := try(t, th, fmt.Sprintf("new%d@example.com", i), fmt.Sprintf("192.0.2.%d", i), outcomeSucceeded); got != firstEnds {
			t.Fatalf("a new key with the map full of lockouts: Retry-After %v, want %v (until the first lockout ends)", got, firstEnds)
		}
	}
	if len(th.windows) != th.maxKeys {
		t.Errorf("%d windows, want the cap of %d", len(th.windows), th.maxKeys)
	}
	if len(warnings) != 1 || !warnings[0].Equal(clock.now().Add(firstEnds)) {
		t.Errorf("warnings %v, want one, until %v", warnings, clock.now().Add(firstEnds))
	}
	clock.advance(time.Minute)
	try(t, th, "late@example.com", "192.0.2.200", outcomeSucceeded)
	if len(warnings) != 2 {
		t.Errorf("%d warnings a minute later, want 2", len(warnings))
	}
	firstEnds -= time.Minute
	if try(t, th, "user0@example.com", "198.51.100.0", outcomeSucceeded) != firstEnds {
		t.Error("the first lockout did not hold")
	}
	// Once the first lockout ends, its windows make room for the next one.
	clock.advance(firstEnds)
	if got := try(t, th, "new0@example.com", "192.0.2.0", outcomeFailed); got != 0 {
		t.Errorf("a new key once a lockout ended: Retry-After %v, want let through", got)
	}
	if try(t, th, "user1@example.com", "198.51.100.1", outcomeSucceeded) == 0 {
		t.Error("the second lockout was dropped to make room")
	}
}
