package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
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
	page, err := s.ListDeletions(t.Context(), DeletionFilter{}, ListOptions{Sort: Sort{Field: "deleted_at"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var ids []bson.ObjectID
	for _, d := range page.Items {
		ids = append(ids, d.RecordID)
	}
	if !slices.Equal(ids, []bson.ObjectID{first.ID, second.ID}) {
		t.Errorf("deletions of %v, want each of %v once", ids, []bson.ObjectID{first.ID, second.ID})
	}
}
