// Tests of keyset paging (page.go) through the three lists: every sort the API
// offers, ascending and descending, walked page by page with small limits and
// checked against an order computed here (MongoDB's: a missing or null value
// first, then the values, ties broken by id); records without the sort field;
// filters combined with the position; Total; inserts during a walk; the limit
// check; and positionOf.
package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// sortable is what the test knows about one stored record: its id and the
// values of the fields the lists sort by (absent or nil: the record has none).
type sortable struct {
	id   bson.ObjectID
	vals map[string]any // string or time.Time
}

// compareSortValues orders two values of one field as MongoDB does for the
// types used here: missing/null first, strings bytewise, dates by time.
func compareSortValues(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	switch av := a.(type) {
	case string:
		// Names sort as people read them, without case or accents: the
		// Unicode collation's loose comparison says so independently of the
		// store's key.
		return collate.New(language.Und, collate.Loose).CompareString(av, b.(string))
	case time.Time:
		return av.Compare(b.(time.Time))
	}
	panic(fmt.Sprintf("unexpected sort value %T", a))
}

// expectedOrder is the order of recs by (field, _id), both in one direction.
func expectedOrder(recs []sortable, field string, desc bool) []bson.ObjectID {
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b sortable) int {
		c := compareSortValues(a.vals[field], b.vals[field])
		if c == 0 {
			c = bytes.Compare(a.id[:], b.id[:])
		}
		if desc {
			c = -c
		}
		return c
	})
	ids := make([]bson.ObjectID, len(sorted))
	for i, r := range sorted {
		ids[i] = r.id
	}
	return ids
}

// pageFunc fetches one page of some list: the ids on it, where the next page
// starts, and the total when counted.
type pageFunc func(ctx context.Context, opts ListOptions) (ids []bson.ObjectID, next *Position, total *int64, err error)

func usersPages(s *Store, f UserFilter) pageFunc {
	return func(ctx context.Context, opts ListOptions) ([]bson.ObjectID, *Position, *int64, error) {
		p, err := s.ListUsers(ctx, f, opts)
		ids := make([]bson.ObjectID, len(p.Items))
		for i, u := range p.Items {
			ids[i] = u.ID
		}
		return ids, p.Next, p.Total, err
	}
}

func customersPages(s *Store, f CustomerFilter) pageFunc {
	return func(ctx context.Context, opts ListOptions) ([]bson.ObjectID, *Position, *int64, error) {
		p, err := s.ListCustomers(ctx, f, opts)
		ids := make([]bson.ObjectID, len(p.Items))
		for i, c := range p.Items {
			ids[i] = c.ID
		}
		return ids, p.Next, p.Total, err
	}
}

func interactionsPages(s *Store, f InteractionFilter) pageFunc {
	return func(ctx context.Context, opts ListOptions) ([]bson.ObjectID, *Position, *int64, error) {
		p, err := s.ListInteractions(ctx, f, opts)
		ids := make([]bson.ObjectID, len(p.Items))
		for i, it := range p.Items {
			ids[i] = it.ID
		}
		return ids, p.Next, p.Total, err
	}
}

// walk reads every page of a list in order, checking each page's shape, and
// returns the ids in the order seen (duplicates included, and reported).
// between, if not nil, runs after each page but the last.
func walk(t *testing.T, fetch pageFunc, sort Sort, limit int, wantTotal int64, maxRecords int, between func(page int)) []bson.ObjectID {
	t.Helper()
	var out []bson.ObjectID
	seen := map[bson.ObjectID]bool{}
	var after *Position
	for page := 0; ; page++ {
		if page > maxRecords+2 {
			t.Fatalf("walk by %+v did not end after %d pages (at most %d records exist); read %d ids", sort, page, maxRecords, len(out))
		}
		// Counting costs a query of its own: check Total on the first two pages
		// (the second one has a position, which Total must ignore).
		count := wantTotal >= 0 && page < 2
		ids, next, total, err := fetch(t.Context(), ListOptions{Sort: sort, After: after, Limit: limit, Count: count})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if len(ids) > limit {
			t.Errorf("page %d has %d items, limit %d", page, len(ids), limit)
		}
		if count && (total == nil || *total != wantTotal) {
			t.Errorf("page %d: Total %v, want %d", page, total, wantTotal)
		}
		if !count && total != nil {
			t.Errorf("page %d: Total %d without Count", page, *total)
		}
		if len(ids) == 0 && after != nil {
			t.Errorf("page %d is empty although the previous page had a Next", page)
		}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("page %d repeats %v", page, id)
			}
			seen[id] = true
			out = append(out, id)
		}
		if next == nil {
			return out
		}
		if len(ids) != limit {
			t.Errorf("page %d has %d items and a Next; only a full page can have one", page, len(ids))
		}
		if len(ids) > 0 && next.ID != ids[len(ids)-1] {
			t.Errorf("page %d: Next.ID %v is not the last item %v", page, next.ID, ids[len(ids)-1])
		}
		after = next
		if between != nil {
			between(page)
		}
	}
}

// describeIDs shows ids by their position in want, for readable failures.
func describeIDs(got, want []bson.ObjectID) string {
	index := map[bson.ObjectID]int{}
	for i, id := range want {
		index[id] = i
	}
	parts := make([]string, len(got))
	for i, id := range got {
		if j, ok := index[id]; ok {
			parts[i] = fmt.Sprint(j)
		} else {
			parts[i] = "?" + id.Hex()[18:]
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func checkOrder(t *testing.T, got, want []bson.ObjectID) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("walked %d records, want %d in order;\n got (as indexes into want) %s", len(got), len(want), describeIDs(got, want))
	}
}

var sortBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// hours gives time stamps with deliberate ties.
func hours(h int) time.Time { return sortBase.Add(time.Duration(h) * time.Hour) }

// seedPeople stores records sortable by name, created_at and updated_at in
// coll: some through create (then given fixed, tied time stamps), some as the
// original CRM wrote them (no name, no time stamps, or explicit nulls).
func seedPeople(t *testing.T, s *Store, coll string, create func(i int, name string) bson.ObjectID) []sortable {
	t.Helper()
	c := s.db.Collection(coll)
	names := []string{"Ann", "Ann", "ann", "Bob", "Bob", "Bob", "Zed", "Émile", "carol", "Dave", "Dave", "", "Ann", "bob"}
	created := []int{0, 0, 1, 1, 1, 2, -1, 3, 0, 2, 2, 1, 5, 0}
	updated := []int{4, 4, 4, 1, 2, 3, 3, 3, 0, 0, 9, 9, 4, 1}
	var recs []sortable
	for i, name := range names {
		id := create(i, name)
		rawSet(t, c, id, bson.D{{Key: "created_at", Value: hours(created[i])}, {Key: "updated_at", Value: hours(updated[i])}})
		recs = append(recs, sortable{id, map[string]any{"name": name, "created_at": hours(created[i]), "updated_at": hours(updated[i])}})
	}
	legacy := []struct {
		doc  bson.D
		vals map[string]any
	}{
		{bson.D{{Key: "name", Value: "Ann"}}, map[string]any{"name": "Ann"}},
		{bson.D{}, map[string]any{}},
		{bson.D{{Key: "name", Value: nil}, {Key: "created_at", Value: nil}, {Key: "updated_at", Value: nil}}, map[string]any{}},
		{bson.D{{Key: "name", Value: "Bob"}, {Key: "created_at", Value: hours(1)}}, map[string]any{"name": "Bob", "created_at": hours(1)}},
		{bson.D{{Key: "name", Value: "Zed"}, {Key: "contact_info", Value: "x"}, {Key: "notes", Value: "n"}}, map[string]any{"name": "Zed"}},
	}
	for i, l := range legacy {
		id := bson.NewObjectID()
		rawInsert(t, c, append(bson.D{{Key: "_id", Value: id}, {Key: "email", Value: fmt.Sprintf("legacy%d@old.test", i)}}, l.doc...))
		recs = append(recs, sortable{id, l.vals})
	}
	if err := s.fillNameKeys(t.Context()); err != nil { // as the janitor does when the store opens
		t.Fatal(err)
	}
	return recs
}

func TestListKeysetPagingUsersAndCustomers(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	users := seedPeople(t, s, usersCollection, func(i int, name string) bson.ObjectID {
		u := &User{Name: name, Email: fmt.Sprintf("u%d@example.com", i), Status: StatusActive, Role: RoleMember}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		return u.ID
	})
	customers := seedPeople(t, s, customersCollection, func(i int, name string) bson.ObjectID {
		return mustCreateCustomer(t, s, &Customer{Name: name, Email: fmt.Sprintf("c%d@example.com", i)}).ID
	})

	// Different limits put the page boundaries in different places (inside
	// runs of ties, among the records without the field).
	resources := []struct {
		name  string
		pages pageFunc
		recs  []sortable
		limit int
	}{
		{"users", usersPages(s, UserFilter{}), users, 4},
		{"customers", customersPages(s, CustomerFilter{}), customers, 3},
	}
	for _, r := range resources {
		for _, field := range []string{"name", "created_at", "updated_at"} {
			for _, desc := range []bool{false, true} {
				sort := Sort{Field: field, Desc: desc}
				t.Run(fmt.Sprintf("%s/%s/desc=%v", r.name, field, desc), func(t *testing.T) {
					want := expectedOrder(r.recs, field, desc)
					got := walk(t, r.pages, sort, r.limit, int64(len(r.recs)), len(r.recs), nil)
					checkOrder(t, got, want)
				})
			}
		}
	}
}

func TestListKeysetPagingWithFilters(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	statuses := map[bson.ObjectID]string{}
	recs := seedPeople(t, s, customersCollection, func(i int, name string) bson.ObjectID {
		status := StatusActive
		if i%3 == 1 {
			status = StatusInactive
		}
		c := mustCreateCustomer(t, s, &Customer{Name: name, Email: fmt.Sprintf("c%d@example.com", i), Status: status})
		statuses[c.ID] = status
		return c.ID
	})
	nameOf := func(r sortable) string { n, _ := r.vals["name"].(string); return n }
	tests := []struct {
		name   string
		filter CustomerFilter
		match  func(r sortable) bool
		sorts  []Sort
	}{
		// Legacy records (no status) count as active.
		{"active", CustomerFilter{Status: StatusActive}, func(r sortable) bool { return statuses[r.id] != StatusInactive },
			[]Sort{{Field: "name"}, {Field: "created_at", Desc: true}}},
		{"inactive", CustomerFilter{Status: StatusInactive}, func(r sortable) bool { return statuses[r.id] == StatusInactive },
			[]Sort{{Field: "updated_at"}, {Field: "name", Desc: true}}},
		// A search is an $or, as is the position: both must hold.
		{"search", CustomerFilter{Search: "B"}, func(r sortable) bool { return strings.Contains(strings.ToLower(nameOf(r)), "b") },
			[]Sort{{Field: "created_at"}, {Field: "updated_at", Desc: true}}},
		{"search and status", CustomerFilter{Search: "n", Status: StatusActive}, func(r sortable) bool {
			return strings.Contains(strings.ToLower(nameOf(r)), "n") && statuses[r.id] != StatusInactive
		}, []Sort{{Field: "name"}, {Field: "created_at", Desc: true}}},
		{"created range", CustomerFilter{CreatedAfter: ptr(hours(0)), CreatedBefore: ptr(hours(3))}, func(r sortable) bool {
			c, ok := r.vals["created_at"].(time.Time)
			return ok && !c.Before(hours(0)) && c.Before(hours(3))
		}, []Sort{{Field: "created_at"}, {Field: "name", Desc: true}}},
	}
	for _, tc := range tests {
		var subset []sortable
		for _, r := range recs {
			if tc.match(r) {
				subset = append(subset, r)
			}
		}
		if len(subset) < 4 {
			t.Fatalf("%s: only %d records match; the test needs more", tc.name, len(subset))
		}
		for _, sort := range tc.sorts {
			t.Run(fmt.Sprintf("%s/%s/desc=%v", tc.name, sort.Field, sort.Desc), func(t *testing.T) {
				got := walk(t, customersPages(s, tc.filter), sort, 2, int64(len(subset)), len(recs), nil)
				checkOrder(t, got, expectedOrder(subset, sort.Field, sort.Desc))
			})
		}
	}
}

func TestListKeysetPagingInteractions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c1 := mustCreateCustomer(t, s, &Customer{Name: "C1", Email: "c1@example.com"})
	c2 := mustCreateCustomer(t, s, &Customer{Name: "C2", Email: "c2@example.com"})

	// scheduled: hour offset, or -99 for none; created: hour offset.
	scheduled := []int{0, 0, -99, 1, 1, 1, -99, 2, 0, -99, 3, 1, -99, 5}
	created := []int{2, 2, 2, 0, 1, 1, 3, 3, 0, 4, 4, 4, 1, 0}
	var all, ofC1 []sortable
	for i := range scheduled {
		var sched *time.Time
		vals := map[string]any{"created_at": hours(created[i])}
		if scheduled[i] != -99 {
			sched = ptr(hours(scheduled[i]))
			vals["scheduled_at"] = *sched
		}
		cust := c1.ID
		if i%2 == 1 {
			cust = c2.ID
		}
		it := &Interaction{UserID: u.ID, CustomerID: cust, Type: "Call", Status: "Open", ScheduledAt: sched}
		if err := s.CreateInteraction(ctx, it); err != nil {
			t.Fatal(err)
		}
		rawSet(t, s.interactions.Collection, it.ID, bson.D{{Key: "created_at", Value: hours(created[i])}})
		r := sortable{it.ID, vals}
		all = append(all, r)
		if cust == c1.ID {
			ofC1 = append(ofC1, r)
		}
	}
	// As the original CRM wrote them: no created_at, some without scheduled_at,
	// and one with explicit nulls.
	legacy := []struct {
		doc  bson.D
		vals map[string]any
	}{
		{bson.D{}, map[string]any{}},
		{bson.D{{Key: "scheduled_at", Value: hours(1)}}, map[string]any{"scheduled_at": hours(1)}},
		{bson.D{{Key: "scheduled_at", Value: nil}, {Key: "created_at", Value: nil}}, map[string]any{}},
		{bson.D{{Key: "type", Value: "meeting"}}, map[string]any{}},
	}
	for _, l := range legacy {
		id := bson.NewObjectID()
		rawInsert(t, s.interactions.Collection, append(bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: u.ID}, {Key: "customer_id", Value: c1.ID}}, l.doc...))
		r := sortable{id, l.vals}
		all = append(all, r)
		ofC1 = append(ofC1, r)
	}

	lists := []struct {
		name  string
		pages pageFunc
		recs  []sortable
		limit int
	}{
		{"all", interactionsPages(s, InteractionFilter{}), all, 3},
		{"customer", interactionsPages(s, InteractionFilter{CustomerID: &c1.ID}), ofC1, 2},
	}
	for _, l := range lists {
		for _, field := range []string{"scheduled_at", "created_at"} {
			for _, desc := range []bool{false, true} {
				sort := Sort{Field: field, Desc: desc}
				t.Run(fmt.Sprintf("%s/%s/desc=%v", l.name, field, desc), func(t *testing.T) {
					got := walk(t, l.pages, sort, l.limit, int64(len(l.recs)), len(l.recs), nil)
					checkOrder(t, got, expectedOrder(l.recs, field, desc))
				})
			}
		}
	}
	// A single page holding everything has no Next.
	ids, next, _, err := interactionsPages(s, InteractionFilter{})(ctx, ListOptions{Sort: Sort{Field: "created_at"}, Limit: len(all)})
	if err != nil || len(ids) != len(all) || next != nil {
		t.Errorf("one page of exactly all records: %d ids, next %v, %v", len(ids), next, err)
	}
}

// Records inserted while a client walks the pages (new ones, including some
// that sort before the current position and some without the sort field) never
// make a record that existed before the walk repeat or go missing.
func TestListKeysetPagingStableUnderInserts(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	seedPeople(t, s, customersCollection, func(i int, name string) bson.ObjectID {
		return mustCreateCustomer(t, s, &Customer{Name: name, Email: fmt.Sprintf("c%d@example.com", i)}).ID
	})
	inserted := 0
	insertSome := func(page int) {
		if page > 2 {
			return // enough to move things around; keep the walk short
		}
		inserted++
		mustCreateCustomer(t, s, &Customer{Name: fmt.Sprintf("Aaa new %d", inserted), Email: fmt.Sprintf("new-a%d@example.com", inserted)})
		mustCreateCustomer(t, s, &Customer{Name: fmt.Sprintf("zzz new %d", inserted), Email: fmt.Sprintf("new-z%d@example.com", inserted)})
		// A record without name or time stamps: it sorts first ascending, last descending.
		rawInsert(t, s.customers.Collection, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "email", Value: fmt.Sprintf("new-legacy%d@old.test", inserted)}})
	}
	// Each sort has new records landing both before and after the position.
	for _, sort := range []Sort{{Field: "name"}, {Field: "created_at", Desc: true}, {Field: "updated_at"}} {
		t.Run(fmt.Sprintf("%s/desc=%v", sort.Field, sort.Desc), func(t *testing.T) {
			before := existingIDs(t, s)
			got := walk(t, customersPages(s, CustomerFilter{}), sort, 4, -1, 2*len(before), insertSome)
			count := map[bson.ObjectID]int{}
			for _, id := range got {
				count[id]++
			}
			for _, id := range before {
				if count[id] != 1 {
					t.Errorf("record %v that existed before the walk was seen %d times", id, count[id])
				}
			}
		})
	}
}

// existingIDs lists the ids of all customers, straight through the driver.
func existingIDs(t *testing.T, s *Store) []bson.ObjectID {
	t.Helper()
	cur, err := s.customers.Find(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(t.Context(), &docs); err != nil {
		t.Fatal(err)
	}
	ids := make([]bson.ObjectID, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

func TestListLimitMustBePositive(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	for _, limit := range []int{0, -1} {
		for name, f := range map[string]pageFunc{
			"users":        usersPages(s, UserFilter{}),
			"customers":    customersPages(s, CustomerFilter{}),
			"interactions": interactionsPages(s, InteractionFilter{}),
		} {
			if _, _, _, err := f(t.Context(), ListOptions{Sort: Sort{Field: "created_at"}, Limit: limit}); err == nil || !strings.Contains(err.Error(), "limit") {
				t.Errorf("%s with limit %d: %v, want an error about the limit", name, limit, err)
			}
		}
	}
}

func TestPositionOf(t *testing.T) {
	t.Parallel()
	id := bson.NewObjectID()
	when := time.Date(2024, 2, 3, 4, 5, 6, 7_000_000, time.UTC)
	tests := []struct {
		name string
		doc  bson.D
		want any
	}{
		{"date", bson.D{{Key: "f", Value: when}}, when},
		{"string", bson.D{{Key: "f", Value: "Ann"}}, "Ann"},
		{"empty string", bson.D{{Key: "f", Value: ""}}, ""},
		{"missing", bson.D{}, nil},
		{"null", bson.D{{Key: "f", Value: nil}}, nil},
		{"number", bson.D{{Key: "f", Value: int32(5)}}, nil},
		{"document", bson.D{{Key: "f", Value: bson.D{{Key: "x", Value: 1}}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: id}}, tc.doc...))
			if err != nil {
				t.Fatal(err)
			}
			p := positionOf(raw, "f")
			if p.ID != id {
				t.Errorf("ID %v, want %v", p.ID, id)
			}
			switch w := tc.want.(type) {
			case time.Time:
				got, ok := p.Value.(time.Time)
				if !ok || !got.Equal(w) || got.Location() != time.UTC {
					t.Errorf("Value %#v, want %v in UTC", p.Value, w)
				}
			default:
				if p.Value != tc.want {
					t.Errorf("Value %#v, want %#v", p.Value, tc.want)
				}
			}
		})
	}
}
