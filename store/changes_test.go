package store

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Effective keeps exactly the changes that would alter the record, including
// at the edges: empty and absent, zero times, millisecond precision.
func TestEffectiveChanges(t *testing.T) {
	owner := bson.NewObjectID()
	c := &Customer{Name: "N", Email: "e@example.com", Status: StatusActive, OwnerID: &owner}
	if got := (CustomerChanges{Phone: ptr(""), Tags: &[]string{}, Name: ptr("N"), OwnerID: &owner}).Effective(c); !got.None() {
		t.Errorf("re-setting what the customer holds (absent phone and tags included) left %+v", got)
	}
	if got := (CustomerChanges{Phone: ptr("1"), Tags: &[]string{"a"}}).Effective(c); got.Phone == nil || got.Tags == nil {
		t.Errorf("new phone and tags dropped: %+v", got)
	}
	if got := (CustomerChanges{OwnerID: &owner}).Effective(&Customer{}); got.OwnerID == nil {
		t.Error("an owner for a customer without one was dropped")
	}

	at := time.Date(2030, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	it := &Interaction{Type: "Call", Status: "Open", ScheduledAt: &at}
	for _, tc := range []struct {
		name string
		ch   InteractionChanges
		it   *Interaction
		none bool
	}{
		{"the same time, finer than stored", InteractionChanges{ScheduledAt: ptr(ptr(at.Add(456 * time.Microsecond)))}, it, true},
		{"another millisecond", InteractionChanges{ScheduledAt: ptr(ptr(at.Add(time.Millisecond)))}, it, false},
		{"removing a time there is not", InteractionChanges{ScheduledAt: new(*time.Time)}, &Interaction{}, true},
		{"removing a time there is", InteractionChanges{ScheduledAt: new(*time.Time)}, it, false},
		{"setting a first time", InteractionChanges{ScheduledAt: ptr(&at)}, &Interaction{}, false},
		// Go's zero time is an instant like any other, not "no time".
		{"setting the zero time where there is none", InteractionChanges{ScheduledAt: ptr(&time.Time{})}, &Interaction{}, false},
		{"setting the zero time over another", InteractionChanges{ScheduledAt: ptr(&time.Time{})}, it, false},
		{"the zero time again", InteractionChanges{ScheduledAt: ptr(&time.Time{})}, &Interaction{ScheduledAt: &time.Time{}}, true},
		{"removing the zero time", InteractionChanges{ScheduledAt: new(*time.Time)}, &Interaction{ScheduledAt: &time.Time{}}, false},
		{"the same type and status", InteractionChanges{Type: ptr("Call"), Status: ptr("Open")}, it, true},
	} {
		if got := tc.ch.Effective(tc.it).None(); got != tc.none {
			t.Errorf("%s: None() = %v, want %v", tc.name, got, tc.none)
		}
	}

	u := &User{Name: "U", Role: RoleMember, Status: StatusActive}
	if got := (UserChanges{Name: ptr("U"), Role: ptr(RoleMember), PasswordHash: ptr("$argon2id$…")}).Effective(u); got.Name != nil || got.Role != nil || got.PasswordHash == nil {
		t.Errorf("user changes: %+v, want only the password hash", got)
	}
}
