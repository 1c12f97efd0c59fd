package store

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Every delete leaves a trace, a refused one none; the traces list by time,
// by kind of record, and page.
func TestDeletionsAreListed(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	start := time.Now()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	leaving := mustCreateUser(t, s, "Leaving", "leaving@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	kept := mustCreateCustomer(t, s, &Customer{Name: "Kept", Email: "kept@example.com"})
	i1 := mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)
	i2 := mustCreateInteraction(t, s, u.ID, c.ID, "Note", "Open", nil)
	alone := mustCreateInteraction(t, s, u.ID, kept.ID, "Task", "Open", nil)
	mustCreateInteraction(t, s, u.ID, kept.ID, "Task", "Open", nil)

	// Refused: nothing deleted, no trace.
	var re *ReferencedError
	if err := s.DeleteCustomer(ctx, kept.ID, kept.Revision, false, nil); !errors.As(err, &re) {
		t.Fatalf("delete of a customer with interactions = %v, want *ReferencedError", err)
	}
	if err := s.DeleteCustomer(ctx, kept.ID, kept.Revision, true, ptr(leaving.ID)); !errors.Is(err, ErrCascadeRefused) {
		t.Fatalf("a cascade over another user's interactions = %v, want ErrCascadeRefused", err)
	}

	if err := s.DeleteInteraction(ctx, alone.ID, alone.Revision); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCustomer(ctx, c.ID, c.Revision, true, nil); err != nil {
		t.Fatal(err)
	}
	between := time.Now()
	time.Sleep(2 * time.Millisecond) // traces are stamped to the millisecond
	if err := s.DeleteUser(ctx, leaving.ID, leaving.Revision); err != nil {
		t.Fatal(err)
	}

	type trace struct {
		record string
		id     bson.ObjectID
	}
	traces := func(f DeletionFilter) []trace {
		t.Helper()
		page, err := s.ListDeletions(ctx, f, ListOptions{Sort: Sort{Field: "deleted_at"}, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var out []trace
		for _, d := range page.Items {
			if d.DeletedAt.Before(start.Truncate(time.Millisecond)) || d.DeletedAt.After(time.Now()) {
				t.Errorf("deletion of %s %v at %v, outside the test", d.Record, d.RecordID, d.DeletedAt)
			}
			out = append(out, trace{d.Record, d.RecordID})
		}
		return out
	}
	cascade := []trace{{"interaction", i1.ID}, {"interaction", i2.ID}}
	all := traces(DeletionFilter{})
	want := append(append([]trace{{"interaction", alone.ID}}, cascade...), trace{"customer", c.ID}, trace{"user", leaving.ID})
	if len(all) != len(want) || all[0] != want[0] || !slices.Contains(all[1:3], cascade[0]) || !slices.Contains(all[1:3], cascade[1]) ||
		all[3] != want[3] || all[4] != want[4] {
		t.Errorf("deletions %v, want %v (the cascade's two in any order)", all, want)
	}
	if got := traces(DeletionFilter{Records: []string{"customer", "user"}}); !slices.Equal(got, want[3:]) {
		t.Errorf("deletions of customers and users %v, want %v", got, want[3:])
	}
	if got := traces(DeletionFilter{Since: &between}); !slices.Equal(got, want[4:]) {
		t.Errorf("deletions since %v: %v, want %v", between, got, want[4:])
	}

	// Paged one at a time, in the same order.
	var walked []trace
	opts := ListOptions{Sort: Sort{Field: "deleted_at"}, Limit: 1}
	for {
		page, err := s.ListDeletions(ctx, DeletionFilter{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			walked = append(walked, trace{d.Record, d.RecordID})
		}
		if page.Next == nil {
			break
		}
		opts.After = page.Next
	}
	if !slices.Equal(walked, all) {
		t.Errorf("paged one at a time: %v, want %v", walked, all)
	}
}

// A record deleted twice at once (a cascade and its own delete) is listed
// once: the first trace stays.
func TestDeletionListedOnce(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	first := mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)
	second := mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)
	s.recordDeletions(t.Context(), s.interactions, []bson.ObjectID{first.ID})
	s.recordDeletions(t.Context(), s.interactions, []bson.ObjectID{first.ID, second.ID})
	ids := tracedIDs(t, s)
	if !slices.Equal(ids, []bson.ObjectID{first.ID, second.ID}) {
		t.Errorf("deletions of %v, want each of %v once", ids, []bson.ObjectID{first.ID, second.ID})
	}
}

// A cascade records the deletions of what it found and then deleted: one
// interaction moved out of the customer meanwhile stays, with no trace, even
// when another moved in makes the count deleted equal the count found.
func TestCascadeTracesWhatItDeleted(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	doomed := mustCreateCustomer(t, s, &Customer{Name: "Doomed", Email: "doomed@example.com"})
	other := mustCreateCustomer(t, s, &Customer{Name: "Other", Email: "other@example.com"})
	stays := mustCreateInteraction(t, s, u.ID, doomed.ID, "Call", "Open", nil)
	goes := mustCreateInteraction(t, s, u.ID, doomed.ID, "Note", "Open", nil)
	comes := mustCreateInteraction(t, s, u.ID, other.ID, "Task", "Open", nil)
	// Between the cascade's read and its delete, straight through the driver
	// (the store's own writes wait for the one the hook interrupts).
	hook.Store(onceBefore("delete", interactionsCollection, func() {
		rawSet(t, s.interactions.Collection, stays.ID, bson.D{{Key: "customer_id", Value: other.ID}})
		rawSet(t, s.interactions.Collection, comes.ID, bson.D{{Key: "customer_id", Value: doomed.ID}})
	}))
	err := s.DeleteCustomer(ctx, doomed.ID, doomed.Revision, true, nil)
	hook.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetInteraction(ctx, stays.ID); err != nil {
		t.Fatalf("the interaction moved out: %v", err)
	}
	traced := tracedIDs(t, s)
	if slices.Contains(traced, stays.ID) || !slices.Contains(traced, goes.ID) {
		t.Errorf("traces of %v; want %v's, and none of %v, which lives on", traced, goes.ID, stays.ID)
	}
}

// A move onto a customer whose cascade then takes the moved record without
// having found it (it read the customer's records before the move wrote)
// leaves the record's trace itself: the move sees the record gone.
func TestMoveTakenByACascadeLeavesATrace(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	doomed := mustCreateCustomer(t, s, &Customer{Name: "Doomed", Email: "doomed@example.com"})
	stays := mustCreateCustomer(t, s, &Customer{Name: "Stays", Email: "stays@example.com"})
	moving := mustCreateInteraction(t, s, u.ID, stays.ID, "Note", "Open", nil)
	// After the move's write, before its second check: the cascade's delete
	// takes the moved record with the customer, straight through the driver.
	var finds atomic.Int32
	h := commandHook(func(name, coll string) {
		if name == "find" && coll == customersCollection && finds.Add(1) == 2 {
			for _, del := range []struct {
				coll *mongo.Collection
				id   bson.ObjectID
			}{{s.interactions.Collection, moving.ID}, {s.customers.Collection, doomed.ID}} {
				if _, err := del.coll.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: del.id}}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	hook.Store(&h)
	got, err := s.UpdateInteraction(ctx, moving.ID, moving.Revision, InteractionChanges{CustomerID: &doomed.ID})
	hook.Store(nil)
	if err != nil || got.CustomerID != doomed.ID {
		t.Fatalf("the move = %+v, %v; want it to succeed (it came first)", got, err)
	}
	if traced := tracedIDs(t, s); !slices.Equal(traced, []bson.ObjectID{moving.ID}) {
		t.Errorf("traces of %v; want the moved interaction's, %v", traced, moving.ID)
	}
}

// tracedIDs lists the ids of every deleted record with a trace, oldest
// deletion first.
func tracedIDs(t *testing.T, s *Store) []bson.ObjectID {
	t.Helper()
	page, err := s.ListDeletions(t.Context(), DeletionFilter{}, ListOptions{Sort: Sort{Field: "deleted_at"}, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var ids []bson.ObjectID
	for _, d := range page.Items {
		ids = append(ids, d.RecordID)
	}
	return ids
}
