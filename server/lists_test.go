// List queries (issue 3, "Lists") end to end, through the HTTP API:
//   - GET /customers filters status, company (exact), owner_id, tag, q,
//     created_after/created_before, updated_since, alone and combined (AND);
//   - q is a case-insensitive, literal substring of name, email and company:
//     regex metacharacters match themselves and never cause a 500;
//   - GET /interactions and GET /customers/{id}/interactions filters customer_id
//     (the former only), user_id, type, status, scheduled_from/scheduled_to;
//   - GET /users filters status, role, q;
//   - every sort of every list, ties broken by id; interactions without
//     scheduled_at come first by scheduled_at and last by -scheduled_at;
//   - keyset pagination for every sort: each record exactly once and in order,
//     next_cursor null on the last page, a Link rel="next" header exactly when
//     there is a next page and leading to the same page as the cursor, and no
//     record that existed before a walk repeated or skipped while records are
//     inserted and deleted during it;
//   - cursor safety (tampered, made up, issued for another sort or list) and the
//     limit bounds;
//   - include_total;
//   - 400 problems naming the parameter for unknown, repeated and malformed
//     query parameters.
//
// Expected sets and orders are always computed from the fixture data that the
// test wrote (the create and update responses), never from list responses.

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oapi-codegen/nullable"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"github.com/opencrm/crm/gen"
)

// listUnknownID is a well-formed id that no record has.
const listUnknownID = "0123456789abcdef01234567"

// listWorld is a server holding a varied set of users, customers and
// interactions, and those records as the API last returned them.
type listWorld struct {
	e                 *env
	admin, bob, carol user
	users             []gen.User
	customers         []gen.Customer
	interactions      []gen.Interaction
	base              time.Time // scheduled_at values are offsets from it
	labels            map[string]string
}

// listCustomerSpecs is the customer fixture. It has a repeated name (a tie for
// the name sort), companies differing only in case, and names and companies
// holding regex metacharacters, next to text that those would match as a regex.
var listCustomerSpecs = []struct {
	name, email, company string
	status               gen.CustomerStatus
	tags                 []string
	owner                string // "admin", "bob" or "carol"
}{
	{"Grace Hopper", "grace@navy.example", "Compilers Inc", gen.CustomerStatusActive, []string{"vip", "navy"}, "bob"},
	{"Alan Turing", "alan@bletchley.example", "Bletchley Park", gen.CustomerStatusActive, []string{"crypto"}, "admin"},
	{"Ada Lovelace", "ada@engines.example", "Analytical Engines", gen.CustomerStatusInactive, []string{"vip"}, "carol"},
	{"Abc Corp", "abc@abc.example", "", gen.CustomerStatusActive, nil, "bob"},
	{"Katherine Johnson", "kj@nasa.example", "A.C. Industries", gen.CustomerStatusActive, []string{"vip"}, "admin"},
	{"Margaret Hamilton", "margaret@mit.example", "compilers inc", gen.CustomerStatusInactive, []string{"navy"}, "bob"},
	{"Star .* Power", "star@power.example", "Regex (Holdings)", gen.CustomerStatusActive, []string{"vip"}, "carol"},
	{"Bracket [Ltd]", "bracket@ltd.example", "Compilers Inc", gen.CustomerStatusActive, []string{"crypto", "vip"}, "admin"},
	{"Grace Hopper", "grace.hopper@compilers.example", "Compilers Inc", gen.CustomerStatusInactive, []string{"vip"}, "carol"},
	{"Edsger Dijkstra", "edsger@cwi.example", `Back\Slash ^Co$`, gen.CustomerStatusActive, []string{"algorithms"}, "carol"},
}

// newListWorld starts a server and writes the fixture.
func newListWorld(t *testing.T) *listWorld {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	w := &listWorld{e: e, base: time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC), labels: map[string]string{}}
	w.admin = e.bootstrap()
	w.bob = e.addUser(w.admin, "Bob Member", gen.Member)
	w.carol = e.addUser(w.admin, "Carol Member", gen.Member)
	w.users = []gen.User{w.admin.User, w.bob.User, w.carol.User}
	ac := e.as(w.admin.token)

	password := "a long enough password"
	e.check.secret(password)
	for _, u := range []struct {
		name, email, company string
		role                 gen.UserRole
		status               gen.UserStatus
	}{
		{"Dave Admin", "dave@ops.example.net", "Ops (Team)", gen.Admin, gen.UserStatusActive},
		{"Eve Inactive", "eve@example.net", "Eve Corp", gen.Member, gen.UserStatusInactive},
		{"Frank Former", "frank@example.com", "", gen.Admin, gen.UserStatusInactive},
		{"Bob Member", "bob.two@example.net", "", gen.Member, gen.UserStatusActive}, // bob's name again: a tie
	} {
		body := gen.CreateUserJSONRequestBody{Name: u.name, Email: u.email, Password: password, Role: ptr(u.role), Status: ptr(u.status)}
		if u.company != "" {
			body.Company = ptr(u.company)
		}
		res, err := ac.CreateUserWithResponse(ctx, nil, body)
		mustStatus(t, res, err, http.StatusCreated)
		w.users = append(w.users, *res.JSON201)
	}

	owners := map[string]string{"admin": w.admin.Id, "bob": w.bob.Id, "carol": w.carol.Id}
	for _, s := range listCustomerSpecs {
		body := gen.CreateCustomerJSONRequestBody{Name: s.name, Email: s.email, Status: ptr(s.status), OwnerId: ptr(owners[s.owner])}
		if s.company != "" {
			body.Company = ptr(s.company)
		}
		if s.tags != nil {
			body.Tags = ptr(s.tags)
		}
		res, err := ac.CreateCustomerWithResponse(ctx, nil, body)
		mustStatus(t, res, err, http.StatusCreated)
		w.customers = append(w.customers, *res.JSON201)
		// Distinct creation instants (stored to the millisecond), so that time
		// ranges split the fixture.
		time.Sleep(2 * time.Millisecond)
	}
	// Two later changes: updated_at differs from created_at, and the
	// updated_at order from the created_at order.
	for _, i := range []int{5, 1} {
		time.Sleep(2 * time.Millisecond)
		res, err := ac.UpdateCustomerWithResponse(ctx, w.customers[i].Id, nil, gen.UpdateCustomerJSONRequestBody{Notes: nullable.NewNullableWithValue("called back")})
		mustStatus(t, res, err, http.StatusOK)
		w.customers[i] = *res.JSON200
	}
	ures, err := ac.UpdateUserWithResponse(ctx, w.carol.Id, nil, gen.UpdateUserJSONRequestBody{Company: nullable.NewNullableWithValue("Carol & Co")})
	mustStatus(t, ures, err, http.StatusOK)
	w.users[2] = *ures.JSON200

	// Interactions: three without scheduled_at, three scheduled at the same
	// instant (base+2h), one exactly at base.
	at := func(hours int) *time.Time { v := w.base.Add(time.Duration(hours) * time.Hour); return &v }
	for _, s := range []struct {
		customer int
		user     string
		typ      gen.InteractionType
		status   gen.InteractionStatus
		at       *time.Time
	}{
		{0, "bob", gen.InteractionTypeMeeting, gen.Open, at(2)},
		{0, "carol", gen.InteractionTypeCall, gen.Resolved, nil},
		{1, "bob", gen.InteractionTypeCall, gen.Open, at(1)},
		{1, "admin", gen.InteractionTypeEmail, gen.InProgress, at(2)},
		{0, "bob", gen.InteractionTypeTask, gen.Open, nil},
		{1, "carol", gen.InteractionTypeMeeting, gen.Cancelled, at(5)},
		{0, "admin", gen.InteractionTypeNote, gen.Resolved, at(0)},
		{1, "bob", gen.InteractionTypeTicket, gen.Open, nil},
		{0, "carol", gen.InteractionTypeMeeting, gen.InProgress, at(2)},
		{0, "bob", gen.InteractionTypeCall, gen.Open, at(3)},
	} {
		w.addInteraction(t, w.customers[s.customer].Id, owners[s.user], s.typ, s.status, s.at)
	}
	// Two later changes, as for customers.
	for _, i := range []int{6, 2} {
		time.Sleep(2 * time.Millisecond)
		res, err := ac.UpdateInteractionWithResponse(ctx, w.interactions[i].Id, nil, gen.UpdateInteractionJSONRequestBody{Description: nullable.NewNullableWithValue("followed up")})
		mustStatus(t, res, err, http.StatusOK)
		w.interactions[i] = *res.JSON200
	}
	for _, u := range w.users {
		w.labels[u.Id] = u.Name + " <" + u.Email + ">"
	}
	for _, c := range w.customers {
		w.labels[c.Id] = c.Name + " <" + c.Email + ">"
	}
	return w
}

// addInteraction records an interaction (as admin) and keeps it in the world.
func (w *listWorld) addInteraction(t testing.TB, customerID, userID string, typ gen.InteractionType, status gen.InteractionStatus, at *time.Time) gen.Interaction {
	t.Helper()
	res, err := w.e.as(w.admin.token).CreateInteractionWithResponse(context.Background(), nil, gen.CreateInteractionJSONRequestBody{
		CustomerId: customerID, UserId: ptr(userID), Type: typ, Status: ptr(status), ScheduledAt: at,
	})
	mustStatus(t, res, err, http.StatusCreated)
	it := *res.JSON201
	w.interactions = append(w.interactions, it)
	when := "unscheduled"
	if it.ScheduledAt != nil {
		when = it.ScheduledAt.Format(time.RFC3339)
	}
	w.labels[it.Id] = fmt.Sprintf("%s/%s/%s #%d", it.Type, it.Status, when, len(w.interactions)-1)
	return it
}

// addCustomer creates a customer (as admin, who owns it) and labels it; the
// caller keeps track of it.
func (w *listWorld) addCustomer(t testing.TB, name, email string) gen.Customer {
	t.Helper()
	res, err := w.e.as(w.admin.token).CreateCustomerWithResponse(context.Background(), nil, gen.CreateCustomerJSONRequestBody{Name: name, Email: email})
	mustStatus(t, res, err, http.StatusCreated)
	w.labels[res.JSON201.Id] = name + " <" + email + ">"
	return *res.JSON201
}

// describe turns ids into readable labels for failure messages.
func (w *listWorld) describe(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = w.labels[id]
		if out[i] == "" {
			out[i] = id
		}
	}
	return out
}

// sameOrder fails the test unless got lists exactly the ids of want, in order.
func (w *listWorld) sameOrder(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, w.describe(got), w.describe(want))
	}
}

// listKeep returns the items for which keep is true.
func listKeep[T any](items []T, keep func(T) bool) []T {
	var out []T
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}

// listOrder returns the ids of items in the order that a list sorted by cmp
// must serve them: by cmp, ties by id, the whole order reversed when desc.
func listOrder[T any](items []T, id func(T) string, cmp func(a, b T) int, desc bool) []string {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b T) int {
		c := cmp(a, b)
		if c == 0 {
			c = strings.Compare(id(a), id(b))
		}
		if desc {
			c = -c
		}
		return c
	})
	ids := make([]string, len(sorted))
	for i, it := range sorted {
		ids[i] = id(it)
	}
	return ids
}

// compareNames orders names as the API's sort=name does, as people read
// them: without case or accents (Unicode collation, loosely).
func compareNames(a, b string) int {
	return collate.New(language.Und, collate.Loose).CompareString(a, b)
}

func customerOrder(cs []gen.Customer, sort string) []string {
	field, desc := strings.CutPrefix(sort, "-")
	cmp := map[string]func(a, b gen.Customer) int{
		"name":       func(a, b gen.Customer) int { return compareNames(a.Name, b.Name) },
		"created_at": func(a, b gen.Customer) int { return a.CreatedAt.Compare(b.CreatedAt) },
		"updated_at": func(a, b gen.Customer) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	}[field]
	return listOrder(cs, func(c gen.Customer) string { return c.Id }, cmp, desc)
}

func userOrder(us []gen.User, sort string) []string {
	field, desc := strings.CutPrefix(sort, "-")
	cmp := map[string]func(a, b gen.User) int{
		"name":       func(a, b gen.User) int { return compareNames(a.Name, b.Name) },
		"created_at": func(a, b gen.User) int { return a.CreatedAt.Compare(b.CreatedAt) },
		"updated_at": func(a, b gen.User) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	}[field]
	return listOrder(us, func(u gen.User) string { return u.Id }, cmp, desc)
}

func interactionOrder(its []gen.Interaction, sort string) []string {
	field, desc := strings.CutPrefix(sort, "-")
	cmp := map[string]func(a, b gen.Interaction) int{
		// Without scheduled_at first, ascending.
		"scheduled_at": func(a, b gen.Interaction) int {
			switch {
			case a.ScheduledAt == nil && b.ScheduledAt == nil:
				return 0
			case a.ScheduledAt == nil:
				return -1
			case b.ScheduledAt == nil:
				return 1
			}
			return a.ScheduledAt.Compare(*b.ScheduledAt)
		},
		"created_at": func(a, b gen.Interaction) int { return a.CreatedAt.Compare(b.CreatedAt) },
		"updated_at": func(a, b gen.Interaction) int { return a.UpdatedAt.Compare(b.UpdatedAt) },
	}[field]
	return listOrder(its, func(it gen.Interaction) string { return it.Id }, cmp, desc)
}

// listContains reports whether any of fields contains q, ignoring case.
func listContains(q string, fields ...string) bool {
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), strings.ToLower(q)) {
			return true
		}
	}
	return false
}

// listPage is one page of any list, as served.
type listPage struct {
	ids      []string
	next     *string // next_cursor; nil when null
	link     string  // the target of the Link rel="next" header; "" when absent
	total    *int64
	hasTotal bool // the body has a "total" member
	path     string
	query    url.Values
}

var listLinkNext = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

// listParse reads a list response.
func listParse(t testing.TB, res *http.Response, body []byte) listPage {
	t.Helper()
	var doc struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
		Total      *int64  `json:"total"`
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("list body: %v: %s", err, body)
	}
	if err := json.Unmarshal(body, &members); err != nil {
		t.Fatalf("list body: %v: %s", err, body)
	}
	if _, ok := members["next_cursor"]; !ok {
		t.Errorf("list without next_cursor (null on the last page): %s", body)
	}
	p := listPage{next: doc.NextCursor, total: doc.Total, path: res.Request.URL.Path, query: res.Request.URL.Query()}
	_, p.hasTotal = members["total"]
	for _, d := range doc.Data {
		p.ids = append(p.ids, d.ID)
	}
	if p.next != nil && *p.next == "" {
		t.Errorf("next_cursor is an empty string, not null")
	}
	switch links := res.Header.Values("Link"); len(links) {
	case 0:
	case 1:
		m := listLinkNext.FindStringSubmatch(links[0])
		if m == nil {
			t.Errorf("Link %q is not a single rel=\"next\" link", links[0])
		} else {
			p.link = m[1]
		}
	default:
		t.Errorf("%d Link headers: %q", len(links), links)
	}
	return p
}

// listFetch gets one page of a list: the first with cursor nil.
type listFetch func(t testing.TB, cursor *string) listPage

func (w *listWorld) customersList(p gen.ListCustomersParams) listFetch {
	return func(t testing.TB, cursor *string) listPage {
		t.Helper()
		q := p
		if cursor != nil {
			q.Cursor = cursor
		}
		res, err := w.e.as(w.admin.token).ListCustomersWithResponse(context.Background(), &q)
		mustStatus(t, res, err, http.StatusOK)
		return listParse(t, res.HTTPResponse, res.Body)
	}
}

func (w *listWorld) usersList(p gen.ListUsersParams) listFetch {
	return func(t testing.TB, cursor *string) listPage {
		t.Helper()
		q := p
		if cursor != nil {
			q.Cursor = cursor
		}
		// A member reads the user list too.
		res, err := w.e.as(w.bob.token).ListUsersWithResponse(context.Background(), &q)
		mustStatus(t, res, err, http.StatusOK)
		return listParse(t, res.HTTPResponse, res.Body)
	}
}

func (w *listWorld) interactionsList(p gen.ListInteractionsParams) listFetch {
	return func(t testing.TB, cursor *string) listPage {
		t.Helper()
		q := p
		if cursor != nil {
			q.Cursor = cursor
		}
		res, err := w.e.as(w.admin.token).ListInteractionsWithResponse(context.Background(), &q)
		mustStatus(t, res, err, http.StatusOK)
		return listParse(t, res.HTTPResponse, res.Body)
	}
}

func (w *listWorld) timelineList(customerID string, p gen.ListCustomerInteractionsParams) listFetch {
	return func(t testing.TB, cursor *string) listPage {
		t.Helper()
		q := p
		if cursor != nil {
			q.Cursor = cursor
		}
		res, err := w.e.as(w.carol.token).ListCustomerInteractionsWithResponse(context.Background(), customerID, &q)
		mustStatus(t, res, err, http.StatusOK)
		return listParse(t, res.HTTPResponse, res.Body)
	}
}

// rawList gets a list page by path and query, as a Link header gives it.
func (w *listWorld) rawList(t testing.TB, pathAndQuery string) listPage {
	t.Helper()
	res, body := w.e.raw(http.MethodGet, pathAndQuery, w.admin.token, "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", pathAndQuery, res.StatusCode, body)
	}
	return listParse(t, res, body)
}

// walk pages through a list, limit records a page, and returns the ids in the
// order served. It checks every page on the way: at most limit records, a full
// page whenever another follows and a non-empty one after a cursor,
// next_cursor and the Link header together, and the Link naming the same path
// and parameters with the cursor. The second page is fetched both ways, by the
// cursor and by the Link, which must agree; after that the walk alternates
// between following the Link and passing the cursor, so both take part in
// every walk whose result the caller checks. between, if set, runs before each
// next page is fetched.
func (w *listWorld) walk(t *testing.T, limit int, fetch listFetch, between func(seen []string)) []string {
	t.Helper()
	p := fetch(t, nil)
	var seen []string
	for n := 1; ; n++ {
		if len(p.ids) > limit {
			t.Fatalf("page %d has %d records; limit is %d", n, len(p.ids), limit)
		}
		seen = append(seen, p.ids...)
		if (p.next == nil) != (p.link == "") {
			t.Fatalf("page %d: next_cursor %v but Link %q: present exactly together", n, deref(p.next), p.link)
		}
		if p.next == nil {
			return seen
		}
		if n > 60 {
			t.Fatalf("the walk does not end: %q", w.describe(seen))
		}
		if len(p.ids) != limit {
			t.Errorf("page %d has %d records but a next page; want %d", n, len(p.ids), limit)
		}
		link, err := url.Parse(p.link)
		if err != nil {
			t.Fatalf("Link target %q: %v", p.link, err)
		}
		if link.Path != p.path || link.Query().Get("cursor") != *p.next || !listSameExceptCursor(link.Query(), p.query) {
			t.Errorf("page %d: Link %q for request %s?%s with next_cursor %q", n, p.link, p.path, p.query.Encode(), *p.next)
		}
		if between != nil {
			between(seen)
		}
		var next listPage
		switch {
		case n == 1:
			next = fetch(t, p.next)
			viaLink := w.rawList(t, p.link)
			if !slices.Equal(next.ids, viaLink.ids) || deref(next.next) != deref(viaLink.next) {
				t.Errorf("page %d: following the Link gave %q (next %q), the cursor %q (next %q)",
					n+1, w.describe(viaLink.ids), deref(viaLink.next), w.describe(next.ids), deref(next.next))
			}
		case n%2 == 0:
			next = w.rawList(t, p.link)
		default:
			next = fetch(t, p.next)
		}
		if len(next.ids) == 0 {
			t.Errorf("page %d after a next_cursor is empty", n+1)
		}
		p = next
	}
}

// listDefaults are the spec's defaults of the list parameters, which a Link
// may spell out although the request left them out.
var listDefaults = map[string]string{"limit": "50", "include_total": "false", "sort": "-created_at"}

// listSameExceptCursor reports whether the Link's parameters (link) are the
// request's (req), but for the cursor and defaults spelt out.
func listSameExceptCursor(link, req url.Values) bool {
	for k, v := range req {
		if k != "cursor" && !slices.Equal(v, link[k]) {
			return false
		}
	}
	for k, v := range link {
		if _, ok := req[k]; !ok && k != "cursor" && !(len(v) == 1 && listDefaults[k] == v[0]) {
			return false
		}
	}
	return true
}

func TestFilterCustomers(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	cs := w.customers
	company := func(c gen.Customer) string { return deref(c.Company) }
	owner := func(c gen.Customer) string { return deref(c.OwnerId) }
	tagged := func(c gen.Customer, tag string) bool { return slices.Contains(c.Tags, tag) }
	after, before := cs[3].CreatedAt, cs[7].CreatedAt
	updatedSince := cs[5].UpdatedAt // the first of the two customers changed after creation
	last := cs[len(cs)-1].CreatedAt.Add(time.Hour)

	cases := []struct {
		name   string
		params gen.ListCustomersParams
		keep   func(gen.Customer) bool
		size   string // "some" (fewer than all, at least one), "none" or "all"
	}{
		{"no filter", gen.ListCustomersParams{}, func(gen.Customer) bool { return true }, "all"},
		{"status active", gen.ListCustomersParams{Status: ptr(gen.CustomerStatusActive)},
			func(c gen.Customer) bool { return c.Status == gen.CustomerStatusActive }, "some"},
		{"status inactive", gen.ListCustomersParams{Status: ptr(gen.CustomerStatusInactive)},
			func(c gen.Customer) bool { return c.Status == gen.CustomerStatusInactive }, "some"},
		{"company is an exact match", gen.ListCustomersParams{Company: ptr("Compilers Inc")},
			func(c gen.Customer) bool { return company(c) == "Compilers Inc" }, "some"},
		{"company differing in case is another company", gen.ListCustomersParams{Company: ptr("compilers inc")},
			func(c gen.Customer) bool { return company(c) == "compilers inc" }, "some"},
		{"company is not a prefix search", gen.ListCustomersParams{Company: ptr("Compilers")},
			func(c gen.Customer) bool { return company(c) == "Compilers" }, "none"},
		{"company with metacharacters", gen.ListCustomersParams{Company: ptr("Regex (Holdings)")},
			func(c gen.Customer) bool { return company(c) == "Regex (Holdings)" }, "some"},
		{"owner bob", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{w.bob.Id}},
			func(c gen.Customer) bool { return owner(c) == w.bob.Id }, "some"},
		{"owner carol", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{w.carol.Id}},
			func(c gen.Customer) bool { return owner(c) == w.carol.Id }, "some"},
		{"owner who owns nothing", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{listUnknownID}},
			func(c gen.Customer) bool { return owner(c) == listUnknownID }, "none"},
		{"tag vip", gen.ListCustomersParams{Tag: &[]string{"vip"}}, func(c gen.Customer) bool { return tagged(c, "vip") }, "some"},
		{"tag navy", gen.ListCustomersParams{Tag: &[]string{"navy"}}, func(c gen.Customer) bool { return tagged(c, "navy") }, "some"},
		{"tag nobody has", gen.ListCustomersParams{Tag: &[]string{"nobody"}}, func(c gen.Customer) bool { return tagged(c, "nobody") }, "none"},
		{"tag with spaces around it, as stored tags are trimmed", gen.ListCustomersParams{Tag: &[]string{" vip "}}, func(c gen.Customer) bool { return tagged(c, "vip") }, "some"},
		{"q with spaces around it", gen.ListCustomersParams{Q: ptr("  grace ")},
			func(c gen.Customer) bool { return listContains("grace", c.Name, c.Email, company(c)) }, "some"},
		{"any of two tags", gen.ListCustomersParams{Tag: &[]string{"navy", "crypto"}},
			func(c gen.Customer) bool { return tagged(c, "navy") || tagged(c, "crypto") }, "some"},
		{"any of two owners", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{w.bob.Id, w.carol.Id}},
			func(c gen.Customer) bool { return owner(c) == w.bob.Id || owner(c) == w.carol.Id }, "some"},
		{"email is exact, ASCII letters in any case", gen.ListCustomersParams{Email: ptr(strings.ToUpper(cs[0].Email))},
			func(c gen.Customer) bool { return c.Email == cs[0].Email }, "some"},
		{"email is not a substring", gen.ListCustomersParams{Email: ptr("x" + cs[0].Email)},
			func(c gen.Customer) bool { return false }, "none"},
		{"created_after is inclusive", gen.ListCustomersParams{CreatedAfter: &after},
			func(c gen.Customer) bool { return !c.CreatedAt.Before(after) }, "some"},
		{"created_before is exclusive", gen.ListCustomersParams{CreatedBefore: &before},
			func(c gen.Customer) bool { return c.CreatedAt.Before(before) }, "some"},
		{"created range", gen.ListCustomersParams{CreatedAfter: &after, CreatedBefore: &before},
			func(c gen.Customer) bool { return !c.CreatedAt.Before(after) && c.CreatedAt.Before(before) }, "some"},
		{"updated_since is inclusive", gen.ListCustomersParams{UpdatedSince: &updatedSince},
			func(c gen.Customer) bool { return !c.UpdatedAt.Before(updatedSince) }, "some"},
		{"status, company and tag", gen.ListCustomersParams{Status: ptr(gen.CustomerStatusActive), Company: ptr("Compilers Inc"), Tag: &[]string{"vip"}},
			func(c gen.Customer) bool {
				return c.Status == gen.CustomerStatusActive && company(c) == "Compilers Inc" && tagged(c, "vip")
			}, "some"},
		{"owner and status", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{w.bob.Id}, Status: ptr(gen.CustomerStatusInactive)},
			func(c gen.Customer) bool { return owner(c) == w.bob.Id && c.Status == gen.CustomerStatusInactive }, "some"},
		{"q and owner", gen.ListCustomersParams{Q: ptr("grace"), OwnerId: &[]gen.ObjectId{w.carol.Id}},
			func(c gen.Customer) bool {
				return listContains("grace", c.Name, c.Email, company(c)) && owner(c) == w.carol.Id
			}, "some"},
		{"tag and created_after", gen.ListCustomersParams{Tag: &[]string{"vip"}, CreatedAfter: &after},
			func(c gen.Customer) bool { return tagged(c, "vip") && !c.CreatedAt.Before(after) }, "some"},
		{"filters that exclude each other", gen.ListCustomersParams{Company: ptr("Bletchley Park"), Tag: &[]string{"vip"}},
			func(c gen.Customer) bool { return company(c) == "Bletchley Park" && tagged(c, "vip") }, "none"},
		{"every filter at once", gen.ListCustomersParams{
			Status: ptr(gen.CustomerStatusActive), Company: ptr("Compilers Inc"), OwnerId: &[]gen.ObjectId{w.admin.Id}, Tag: &[]string{"crypto"}, Q: ptr("BRACKET"),
			CreatedAfter: &cs[0].CreatedAt, CreatedBefore: &last, UpdatedSince: &cs[0].CreatedAt,
		}, func(c gen.Customer) bool {
			return c.Status == gen.CustomerStatusActive && company(c) == "Compilers Inc" && owner(c) == w.admin.Id &&
				tagged(c, "crypto") && listContains("BRACKET", c.Name, c.Email, company(c)) &&
				!c.CreatedAt.Before(cs[0].CreatedAt) && c.CreatedAt.Before(last) && !c.UpdatedAt.Before(cs[0].CreatedAt)
		}, "some"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			matching := listKeep(cs, tc.keep)
			switch {
			case tc.size == "none" && len(matching) != 0,
				tc.size == "all" && len(matching) != len(cs),
				tc.size == "some" && (len(matching) == 0 || len(matching) == len(cs)):
				t.Fatalf("the fixture does not exercise this filter: %d of %d match", len(matching), len(cs))
			}
			params := tc.params
			params.Limit = ptr(200)
			p := w.customersList(params)(t, nil)
			w.sameOrder(t, "customers", p.ids, customerOrder(matching, "-created_at"))
			if p.next != nil || p.link != "" {
				t.Errorf("a single page has next_cursor %q and Link %q", deref(p.next), p.link)
			}
			if p.hasTotal {
				t.Errorf("total without include_total")
			}
		})
	}

	// An instant is an instant, whatever the offset it is written with.
	t.Run("created range with offsets", func(t *testing.T) {
		east, west := time.FixedZone("UTC+2", 2*3600), time.FixedZone("UTC-7:30", -(7*3600+1800))
		query := url.Values{
			"created_after":  {after.In(east).Format(time.RFC3339Nano)},
			"created_before": {before.In(west).Format(time.RFC3339Nano)},
			"limit":          {"200"},
		}
		p := w.rawList(t, "/customers?"+query.Encode())
		w.sameOrder(t, "customers", p.ids, customerOrder(listKeep(cs, func(c gen.Customer) bool {
			return !c.CreatedAt.Before(after) && c.CreatedAt.Before(before)
		}), "-created_at"))
	})

	// Values with spaces, "+" and metacharacters survive in the Link from page
	// to page.
	t.Run("walk with encoded values", func(t *testing.T) {
		east := time.FixedZone("UTC+2", 2*3600)
		values := url.Values{
			"company":       {"Compilers Inc"},
			"created_after": {cs[0].CreatedAt.In(east).Format(time.RFC3339Nano)},
			"sort":          {"name"},
			"limit":         {"1"},
		}
		fetch := func(t testing.TB, cursor *string) listPage {
			q := url.Values{}
			for k, v := range values {
				q[k] = v
			}
			if cursor != nil {
				q.Set("cursor", *cursor)
			}
			return w.rawList(t, "/customers?"+q.Encode())
		}
		for _, q := range []string{"r", "t [ltd"} {
			values.Set("q", q)
			want := customerOrder(listKeep(cs, func(c gen.Customer) bool {
				return company(c) == "Compilers Inc" && listContains(q, c.Name, c.Email, company(c)) && !c.CreatedAt.Before(cs[0].CreatedAt)
			}), "name")
			if len(want) == 0 {
				t.Fatalf("the fixture has no customer for q=%q", q)
			}
			w.sameOrder(t, "walk with q="+q, w.walk(t, 1, fetch, nil), want)
		}
	})
}

func TestSearchIsLiteralAndCaseInsensitive(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	customerFields := func(c gen.Customer) []string { return []string{c.Name, c.Email, deref(c.Company)} }
	userFields := func(u gen.User) []string { return []string{u.Name, u.Email, deref(u.Company)} }

	for _, tc := range []struct {
		q string
		// trap: q means something else as a regular expression, and the
		// fixture has text on which the two readings differ (or the regex is
		// invalid, which would be a 500).
		trap bool
	}{
		{"hopper", false}, {"HoPPeR", false}, {"COMPILERS", false}, {"navy.EXAMPLE", false},
		{"zzz", false}, {"ltd]", false},
		{"a.c", true}, {".*", true}, {"(", true}, {"x (h", true}, {"[", true}, {"[ltd]", true},
		{`\`, true}, {"^co$", true}, {"+", true}, {"|", true}, {"STAR .* POWER", false},
	} {
		t.Run(tc.q, func(t *testing.T) {
			literal := func(c gen.Customer) bool { return listContains(tc.q, customerFields(c)...) }
			if tc.trap {
				if re, err := regexp.Compile("(?i)" + tc.q); err == nil {
					asRegex := func(c gen.Customer) bool { return slices.ContainsFunc(customerFields(c), re.MatchString) }
					if slices.Equal(customerOrder(listKeep(w.customers, asRegex), "name"), customerOrder(listKeep(w.customers, literal), "name")) {
						t.Fatalf("the fixture does not tell %q as a regex from %q as text", tc.q, tc.q)
					}
				}
			}
			query := url.Values{"q": {tc.q}, "limit": {"200"}}.Encode()
			p := w.rawList(t, "/customers?"+query)
			w.sameOrder(t, "customers", p.ids, customerOrder(listKeep(w.customers, literal), "-created_at"))

			if strings.ContainsAny(tc.q, "+ ") {
				// The generated client sends the same search.
				viaClient := w.customersList(gen.ListCustomersParams{Q: ptr(tc.q), Limit: ptr(200)})(t, nil)
				w.sameOrder(t, "customers through the client", viaClient.ids, p.ids)
			}

			users := w.rawList(t, "/users?"+query)
			w.sameOrder(t, "users", users.ids, userOrder(listKeep(w.users, func(u gen.User) bool { return listContains(tc.q, userFields(u)...) }), "-created_at"))
		})
	}
}

// listCustomerSorts is every sort of the customer list, "" for none (the
// default, -created_at).
var listCustomerSorts = []gen.ListCustomersParamsSort{"",
	gen.ListCustomersParamsSortName, gen.ListCustomersParamsSortMinusName,
	gen.ListCustomersParamsSortCreatedAt, gen.ListCustomersParamsSortMinusCreatedAt,
	gen.ListCustomersParamsSortUpdatedAt, gen.ListCustomersParamsSortMinusUpdatedAt,
}

// listSortParam returns the sort parameter to send (nil for the default) and
// the order it means.
func listSortParam[S ~string](s S) (*S, string) {
	if s == "" {
		return nil, "-created_at"
	}
	return &s, string(s)
}

// listLimits are the page sizes to walk a sort with: 2 and 3, or only 3 for
// the default sort, whose order is the one of -created_at, walked too.
func listLimits[S ~string](s S) []int {
	if s == "" {
		return []int{3}
	}
	return []int{2, 3}
}

// listSortName names a sort for a subtest.
func listSortName[S ~string](s S) string {
	if s == "" {
		return "default"
	}
	return string(s)
}

func TestSortAndPaginateCustomers(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	if w.customers[0].Name != w.customers[8].Name {
		t.Fatal("the fixture needs two customers of the same name, to tie")
	}
	activeVIP := func(c gen.Customer) bool {
		return c.Status == gen.CustomerStatusActive && slices.Contains(c.Tags, "vip")
	}
	for _, s := range listCustomerSorts {
		t.Run(listSortName(s), func(t *testing.T) {
			param, order := listSortParam(s)
			want := customerOrder(w.customers, order)

			one := w.customersList(gen.ListCustomersParams{Sort: param, Limit: ptr(200)})(t, nil)
			w.sameOrder(t, "limit=200", one.ids, want)
			if one.next != nil || one.link != "" {
				t.Errorf("the only page has next_cursor %q and Link %q", deref(one.next), one.link)
			}
			// 2 divides the count (the last page is full), 3 does not.
			for _, limit := range listLimits(s) {
				got := w.walk(t, limit, w.customersList(gen.ListCustomersParams{Sort: param, Limit: &limit}), nil)
				w.sameOrder(t, fmt.Sprintf("walk with limit=%d", limit), got, want)
			}
			// Filters hold on every page (the Link keeps them).
			got := w.walk(t, 2, w.customersList(gen.ListCustomersParams{Sort: param, Limit: ptr(2), Status: ptr(gen.CustomerStatusActive), Tag: &[]string{"vip"}}), nil)
			w.sameOrder(t, "walk of active vip customers with limit=2", got, customerOrder(listKeep(w.customers, activeVIP), order))
		})
	}
}

// listInteractionSorts is every sort of the interaction lists, "" for none.
var listInteractionSorts = []gen.ListInteractionsParamsSort{"",
	gen.ListInteractionsParamsSortScheduledAt, gen.ListInteractionsParamsSortMinusScheduledAt,
	gen.ListInteractionsParamsSortCreatedAt, gen.ListInteractionsParamsSortMinusCreatedAt,
	gen.ListInteractionsParamsSortUpdatedAt, gen.ListInteractionsParamsSortMinusUpdatedAt,
}

// timelineSort converts an interaction sort for the timeline's parameters.
func timelineSort(s *gen.ListInteractionsParamsSort) *gen.ListCustomerInteractionsParamsSort {
	if s == nil {
		return nil
	}
	return ptr(gen.ListCustomerInteractionsParamsSort(*s))
}

func TestSortAndPaginateInteractions(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	unscheduled := listKeep(w.interactions, func(it gen.Interaction) bool { return it.ScheduledAt == nil })
	unscheduledIDs := interactionOrder(unscheduled, "created_at")
	slices.Sort(unscheduledIDs)
	for _, s := range listInteractionSorts {
		t.Run(listSortName(s), func(t *testing.T) {
			param, order := listSortParam(s)
			want := interactionOrder(w.interactions, order)

			one := w.interactionsList(gen.ListInteractionsParams{Sort: param, Limit: ptr(200)})(t, nil)
			w.sameOrder(t, "limit=200", one.ids, want)
			if one.next != nil || one.link != "" {
				t.Errorf("the only page has next_cursor %q and Link %q", deref(one.next), one.link)
			}
			// Those without scheduled_at: first ascending, last descending.
			var ends []string
			switch order {
			case "scheduled_at":
				ends = slices.Clone(one.ids[:min(len(unscheduled), len(one.ids))])
			case "-scheduled_at":
				ends = slices.Clone(one.ids[max(0, len(one.ids)-len(unscheduled)):])
			}
			if ends != nil {
				slices.Sort(ends)
				if !slices.Equal(ends, unscheduledIDs) {
					t.Errorf("by %s the unscheduled interactions are not at the %s end: %q", order,
						map[bool]string{true: "first", false: "last"}[order == "scheduled_at"], w.describe(one.ids))
				}
			}

			for _, limit := range listLimits(s) {
				got := w.walk(t, limit, w.interactionsList(gen.ListInteractionsParams{Sort: param, Limit: &limit}), nil)
				w.sameOrder(t, fmt.Sprintf("walk of /interactions with limit=%d", limit), got, want)
			}
			got := w.walk(t, 2, w.interactionsList(gen.ListInteractionsParams{Sort: param, Limit: ptr(2), UserId: &[]gen.ObjectId{w.bob.Id, w.carol.Id}}), nil)
			w.sameOrder(t, "walk of bob's and carol's interactions with limit=2", got,
				interactionOrder(listKeep(w.interactions, func(it gen.Interaction) bool { return it.UserId == w.bob.Id || it.UserId == w.carol.Id }), order))

			// A customer's timeline.
			grace := w.customers[0]
			mine := listKeep(w.interactions, func(it gen.Interaction) bool { return it.CustomerId == grace.Id })
			got = w.walk(t, 2, w.timelineList(grace.Id, gen.ListCustomerInteractionsParams{Sort: timelineSort(param), Limit: ptr(2)}), nil)
			w.sameOrder(t, "walk of Grace Hopper's timeline with limit=2", got, interactionOrder(mine, order))
		})
	}
}

// listInteractionFilter is a filter of the interaction lists, sent to both.
type listInteractionFilter struct {
	customer *string
	users    []gen.ObjectId // any of them
	types    []gen.InteractionType
	statuses []gen.InteractionStatus
	from, to *time.Time
}

func (f listInteractionFilter) empty() bool {
	return f.customer == nil && f.users == nil && f.types == nil && f.statuses == nil && f.from == nil && f.to == nil
}

// anyOf is the parameter for values: nil when there are none.
func anyOf[T any](values []T) *[]T {
	if values == nil {
		return nil
	}
	return &values
}

func (f listInteractionFilter) keep(it gen.Interaction) bool {
	switch {
	case f.customer != nil && it.CustomerId != *f.customer,
		f.users != nil && !slices.Contains(f.users, it.UserId),
		f.types != nil && !slices.Contains(f.types, it.Type),
		f.statuses != nil && !slices.Contains(f.statuses, it.Status):
		return false
	case f.from == nil && f.to == nil:
		return true
	case it.ScheduledAt == nil:
		return false // a range of scheduled_at leaves out those without one
	}
	return (f.from == nil || !it.ScheduledAt.Before(*f.from)) && (f.to == nil || it.ScheduledAt.Before(*f.to))
}

func TestListInteractionsFilters(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	grace, abc := w.customers[0], w.customers[3]
	at := func(hours int) *time.Time { v := w.base.Add(time.Duration(hours) * time.Hour); return &v }
	cases := []struct {
		name   string
		filter listInteractionFilter
		none   bool // no interaction matches
	}{
		{"no filter", listInteractionFilter{}, false},
		{"customer_id", listInteractionFilter{customer: &grace.Id}, false},
		{"customer_id of a customer without interactions", listInteractionFilter{customer: &abc.Id}, true},
		{"user_id", listInteractionFilter{users: []gen.ObjectId{w.bob.Id}}, false},
		{"user_id of nobody", listInteractionFilter{users: []gen.ObjectId{listUnknownID}}, true},
		{"type", listInteractionFilter{types: []gen.InteractionType{gen.InteractionTypeCall}}, false},
		{"type nobody has", listInteractionFilter{types: []gen.InteractionType{gen.InteractionTypeEmail}, users: []gen.ObjectId{w.carol.Id}}, true},
		{"status", listInteractionFilter{statuses: []gen.InteractionStatus{gen.Open}}, false},
		{"scheduled_from is inclusive", listInteractionFilter{from: at(2)}, false},
		{"scheduled_to is exclusive", listInteractionFilter{to: at(2)}, false},
		{"scheduled range", listInteractionFilter{from: at(1), to: at(3)}, false},
		{"customer, user and status", listInteractionFilter{customer: &grace.Id, users: []gen.ObjectId{w.bob.Id}, statuses: []gen.InteractionStatus{gen.Open}}, false},
		{"type and scheduled_from", listInteractionFilter{types: []gen.InteractionType{gen.InteractionTypeMeeting}, from: at(2)}, false},
		{"user and type", listInteractionFilter{users: []gen.ObjectId{w.carol.Id}, types: []gen.InteractionType{gen.InteractionTypeMeeting}}, false},
		{"status and scheduled range", listInteractionFilter{statuses: []gen.InteractionStatus{gen.InProgress}, from: at(0), to: at(5)}, false},
		{"any of two types", listInteractionFilter{types: []gen.InteractionType{gen.InteractionTypeCall, gen.InteractionTypeMeeting}}, false},
		{"any of two statuses, of any of two users", listInteractionFilter{statuses: []gen.InteractionStatus{gen.Open, gen.InProgress},
			users: []gen.ObjectId{w.bob.Id, w.carol.Id}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			matching := listKeep(w.interactions, f.keep)
			if tc.none != (len(matching) == 0) || (!f.empty() && len(matching) == len(w.interactions)) {
				t.Fatalf("the fixture does not exercise this filter: %d of %d match", len(matching), len(w.interactions))
			}
			p := w.interactionsList(gen.ListInteractionsParams{
				Limit: ptr(200), CustomerId: f.customer, UserId: anyOf(f.users), Type: anyOf(f.types), Status: anyOf(f.statuses), ScheduledFrom: f.from, ScheduledTo: f.to,
			})(t, nil)
			w.sameOrder(t, "/interactions", p.ids, interactionOrder(matching, "-created_at"))
			if p.next != nil || p.link != "" {
				t.Errorf("a single page has next_cursor %q and Link %q", deref(p.next), p.link)
			}
			if f.customer != nil {
				return // the timeline has no customer_id parameter
			}
			for _, c := range []gen.Customer{grace, abc} {
				mine := listKeep(matching, func(it gen.Interaction) bool { return it.CustomerId == c.Id })
				p := w.timelineList(c.Id, gen.ListCustomerInteractionsParams{
					Limit: ptr(200), UserId: anyOf(f.users), Type: anyOf(f.types), Status: anyOf(f.statuses), ScheduledFrom: f.from, ScheduledTo: f.to,
				})(t, nil)
				w.sameOrder(t, "/customers/{"+c.Name+"}/interactions", p.ids, interactionOrder(mine, "-created_at"))
			}
		})
	}
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	if w.users[1].Name != w.users[6].Name {
		t.Fatal("the fixture needs two users of the same name, to tie")
	}
	fields := func(u gen.User) []string { return []string{u.Name, u.Email, deref(u.Company)} }
	cases := []struct {
		name   string
		params gen.ListUsersParams
		keep   func(gen.User) bool
	}{
		{"status active", gen.ListUsersParams{Status: ptr(gen.UserStatusActive)}, func(u gen.User) bool { return u.Status == gen.UserStatusActive }},
		{"status inactive", gen.ListUsersParams{Status: ptr(gen.UserStatusInactive)}, func(u gen.User) bool { return u.Status == gen.UserStatusInactive }},
		{"role admin", gen.ListUsersParams{Role: ptr(gen.Admin)}, func(u gen.User) bool { return u.Role == gen.Admin }},
		{"role member", gen.ListUsersParams{Role: ptr(gen.Member)}, func(u gen.User) bool { return u.Role == gen.Member }},
		{"q in a name, any case", gen.ListUsersParams{Q: ptr("bOB")}, func(u gen.User) bool { return listContains("bOB", fields(u)...) }},
		{"q in an email", gen.ListUsersParams{Q: ptr("EXAMPLE.net")}, func(u gen.User) bool { return listContains("EXAMPLE.net", fields(u)...) }},
		{"q in a company, with metacharacters", gen.ListUsersParams{Q: ptr("(team)")}, func(u gen.User) bool { return listContains("(team)", fields(u)...) }},
		{"q in a changed company", gen.ListUsersParams{Q: ptr("& co")}, func(u gen.User) bool { return listContains("& co", fields(u)...) }},
		{"email, ASCII letters in any case", gen.ListUsersParams{Email: ptr(strings.ToUpper(w.users[1].Email))},
			func(u gen.User) bool { return u.Email == w.users[1].Email }},
		{"role and status", gen.ListUsersParams{Role: ptr(gen.Admin), Status: ptr(gen.UserStatusInactive)},
			func(u gen.User) bool { return u.Role == gen.Admin && u.Status == gen.UserStatusInactive }},
		{"role and q", gen.ListUsersParams{Role: ptr(gen.Member), Q: ptr("example.net")},
			func(u gen.User) bool { return u.Role == gen.Member && listContains("example.net", fields(u)...) }},
		{"status, role and q", gen.ListUsersParams{Status: ptr(gen.UserStatusActive), Role: ptr(gen.Admin), Q: ptr("admin")},
			func(u gen.User) bool {
				return u.Status == gen.UserStatusActive && u.Role == gen.Admin && listContains("admin", fields(u)...)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			matching := listKeep(w.users, tc.keep)
			if len(matching) == 0 || len(matching) == len(w.users) {
				t.Fatalf("the fixture does not exercise this filter: %d of %d match", len(matching), len(w.users))
			}
			params := tc.params
			params.Limit = ptr(200)
			p := w.usersList(params)(t, nil)
			w.sameOrder(t, "users", p.ids, userOrder(matching, "-created_at"))
		})
	}

	sorts := []gen.ListUsersParamsSort{"",
		gen.ListUsersParamsSortName, gen.ListUsersParamsSortMinusName,
		gen.ListUsersParamsSortCreatedAt, gen.ListUsersParamsSortMinusCreatedAt,
		gen.ListUsersParamsSortUpdatedAt, gen.ListUsersParamsSortMinusUpdatedAt,
	}
	for _, s := range sorts {
		t.Run("sort "+listSortName(s), func(t *testing.T) {
			param, order := listSortParam(s)
			want := userOrder(w.users, order)
			one := w.usersList(gen.ListUsersParams{Sort: param, Limit: ptr(200)})(t, nil)
			w.sameOrder(t, "limit=200", one.ids, want)
			for _, limit := range listLimits(s) {
				got := w.walk(t, limit, w.usersList(gen.ListUsersParams{Sort: param, Limit: &limit}), nil)
				w.sameOrder(t, fmt.Sprintf("walk with limit=%d", limit), got, want)
			}
			got := w.walk(t, 2, w.usersList(gen.ListUsersParams{Sort: param, Limit: ptr(2), Role: ptr(gen.Member)}), nil)
			w.sameOrder(t, "walk of members with limit=2", got, userOrder(listKeep(w.users, func(u gen.User) bool { return u.Role == gen.Member }), order))
		})
	}
}

func TestPaginationWhileWriting(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	ctx := context.Background()
	ac := w.e.as(w.admin.token)

	// Interactions first: deleting customers below cascades to theirs.
	for _, s := range []gen.ListInteractionsParamsSort{
		gen.ListInteractionsParamsSortScheduledAt, gen.ListInteractionsParamsSortMinusScheduledAt,
	} {
		t.Run("interactions "+string(s), func(t *testing.T) {
			existing := slices.Clone(w.interactions)
			before := map[string]bool{}
			for _, it := range existing {
				before[it.Id] = true
			}
			deleted := map[string]bool{}
			pages := 0
			between := func(seen []string) {
				if pages++; pages > 3 {
					return // else an ascending walk would never catch up
				}
				// New interactions that sort before, among (tied with existing
				// ones) and after everything, and one without scheduled_at.
				for _, hours := range []*int{nil, ptr(-1), ptr(2), ptr(10)} {
					var when *time.Time
					if hours != nil {
						when = ptr(w.base.Add(time.Duration(*hours) * time.Hour))
					}
					w.addInteraction(t, w.customers[2].Id, w.bob.Id, gen.InteractionTypeNote, gen.Open, when)
				}
				// The record the cursor points at disappears: the next page must
				// not depend on it.
				last := seen[len(seen)-1]
				res, err := ac.DeleteInteractionWithResponse(ctx, last, nil)
				mustStatus(t, res, err, http.StatusNoContent)
				deleted[last] = true
			}
			got := w.walk(t, 2, w.interactionsList(gen.ListInteractionsParams{Sort: &s, Limit: ptr(2)}), between)
			all := map[string]gen.Interaction{}
			for _, it := range w.interactions {
				all[it.Id] = it
			}
			w.checkWalk(t, got, before, interactionOrder(existing, string(s)), func(ids []string) []string {
				its := make([]gen.Interaction, len(ids))
				for i, id := range ids {
					its[i] = all[id]
				}
				return interactionOrder(its, string(s))
			})
			w.interactions = listKeep(w.interactions, func(it gen.Interaction) bool { return !deleted[it.Id] })
		})
	}

	n := 0
	// By name new records land before, among and after the position; by
	// creation time after it.
	for _, s := range []gen.ListCustomersParamsSort{
		gen.ListCustomersParamsSortName, gen.ListCustomersParamsSortCreatedAt,
	} {
		t.Run("customers "+string(s), func(t *testing.T) {
			existing := slices.Clone(w.customers)
			before := map[string]bool{}
			for _, c := range existing {
				before[c.Id] = true
			}
			deleted := map[string]bool{}
			pages := 0
			between := func(seen []string) {
				if pages++; pages > 3 {
					return // else an ascending walk would never catch up
				}
				// New customers that sort before, among and after the rest by name.
				for _, name := range []string{"Aaron", "Kim", "Zoe"} {
					n++
					c := w.addCustomer(t, fmt.Sprintf("%s %d", name, n), fmt.Sprintf("walker%d@example.org", n))
					w.customers = append(w.customers, c)
				}
				last := seen[len(seen)-1]
				res, err := ac.DeleteCustomerWithResponse(ctx, last, &gen.DeleteCustomerParams{Cascade: ptr(true)})
				mustStatus(t, res, err, http.StatusNoContent)
				deleted[last] = true
			}
			got := w.walk(t, 2, w.customersList(gen.ListCustomersParams{Sort: &s, Limit: ptr(2)}), between)
			all := map[string]gen.Customer{}
			for _, c := range w.customers {
				all[c.Id] = c
			}
			w.checkWalk(t, got, before, customerOrder(existing, string(s)), func(ids []string) []string {
				cs := make([]gen.Customer, len(ids))
				for i, id := range ids {
					cs[i] = all[id]
				}
				return customerOrder(cs, string(s))
			})
			w.customers = listKeep(w.customers, func(c gen.Customer) bool { return !deleted[c.Id] })
		})
	}
}

// checkWalk checks a walk made while records were written: no record twice,
// the records that existed before it (before) each once and in their order
// (want), and the whole walk, new records included, in the sort order (order
// sorts ids).
func (w *listWorld) checkWalk(t *testing.T, got []string, before map[string]bool, want []string, order func([]string) []string) {
	t.Helper()
	seen := map[string]bool{}
	var old []string
	for _, id := range got {
		if seen[id] {
			t.Errorf("%s served twice", w.describe([]string{id}))
		}
		seen[id] = true
		if before[id] {
			old = append(old, id)
		}
	}
	w.sameOrder(t, "records that existed before the walk", old, want)
	w.sameOrder(t, "the whole walk", got, order(got))
}

func TestCursorSafetyAndLimits(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	first := w.customersList(gen.ListCustomersParams{Limit: ptr(2)})(t, nil)
	if first.next == nil {
		t.Fatal("no next_cursor on a first page of 2")
	}
	cursor := *first.next
	byName := w.customersList(gen.ListCustomersParams{Limit: ptr(2), Sort: ptr(gen.ListCustomersParamsSortName)})(t, nil)
	usersCursor := w.usersList(gen.ListUsersParams{Limit: ptr(2)})(t, nil)
	interactionsCursor := w.interactionsList(gen.ListInteractionsParams{Limit: ptr(2)})(t, nil)
	if byName.next == nil || usersCursor.next == nil || interactionsCursor.next == nil {
		t.Fatal("a first page of 2 without next_cursor")
	}
	esc := url.QueryEscape
	want := customerOrder(w.customers, "-created_at")

	// The cursor as issued works, also with the default sort spelled out.
	for _, path := range []string{"/customers?limit=2&cursor=" + esc(cursor), "/customers?limit=2&sort=-created_at&cursor=" + esc(cursor)} {
		p := w.rawList(t, path)
		w.sameOrder(t, path, p.ids, want[2:4])
	}

	// flip changes the character at i into another base64url character.
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	payload, signature, found := strings.Cut(cursor, ".")
	if !found || len(payload) < 8 || len(signature) < 8 {
		t.Fatalf("cursor %q is not payload.signature; adapt the tampering below", cursor)
	}
	cases := map[string]string{
		"first payload character flipped":               "/customers?limit=2&cursor=" + esc(flip(cursor, 1)),
		"middle payload character flipped":              "/customers?limit=2&cursor=" + esc(flip(cursor, len(payload)/2)),
		"signature character flipped":                   "/customers?limit=2&cursor=" + esc(flip(cursor, len(payload)+3)),
		"signature dropped":                             "/customers?limit=2&cursor=" + esc(payload),
		"payload of another cursor":                     "/customers?limit=2&cursor=" + esc(strings.Split(*byName.next, ".")[0]+"."+signature),
		"truncated":                                     "/customers?limit=2&cursor=" + esc(cursor[:len(cursor)-1]),
		"extended":                                      "/customers?limit=2&cursor=" + esc(cursor+"AAAA"),
		"random string":                                 "/customers?limit=2&cursor=bm90LWEtY3Vyc29y",
		"random string with a dot":                      "/customers?limit=2&cursor=abc.def",
		"only a dot":                                    "/customers?limit=2&cursor=.",
		"too long":                                      "/customers?limit=2&cursor=" + strings.Repeat("a", 1025),
		"issued for sort=name, used with -name":         "/customers?limit=2&sort=-name&cursor=" + esc(*byName.next),
		"issued for sort=name, used with no sort":       "/customers?limit=2&cursor=" + esc(*byName.next),
		"issued for -created_at, used with name":        "/customers?limit=2&sort=name&cursor=" + esc(cursor),
		"issued for -created_at, used with created_at":  "/customers?limit=2&sort=created_at&cursor=" + esc(cursor),
		"issued for -created_at, used with -updated_at": "/customers?limit=2&sort=-updated_at&cursor=" + esc(cursor),
		"issued by /users, used on /customers":          "/customers?limit=2&cursor=" + esc(*usersCursor.next),
		"issued by /customers, used on /users":          "/users?limit=2&cursor=" + esc(cursor),
		"issued by /customers, used on /interactions":   "/interactions?limit=2&cursor=" + esc(cursor),
		"issued by /interactions, used on /customers":   "/customers?limit=2&cursor=" + esc(*interactionsCursor.next),
		"issued by /customers, used on a timeline":      "/customers/" + w.customers[0].Id + "/interactions?limit=2&cursor=" + esc(cursor),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			res, body := w.e.raw(http.MethodGet, path, w.admin.token, "", "")
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?cursor")
		})
	}

	for _, base := range []string{"/customers", "/users", "/interactions", "/customers/" + w.customers[0].Id + "/interactions"} {
		for _, limit := range []string{"0", "201", "-1", "1000", "ten", "1.5"} {
			t.Run("limit="+limit+" on "+base, func(t *testing.T) {
				res, body := w.e.raw(http.MethodGet, base+"?limit="+limit, w.admin.token, "", "")
				wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?limit")
			})
		}
	}
	t.Run("limit=200", func(t *testing.T) {
		p := w.rawList(t, "/customers?limit=200")
		w.sameOrder(t, "limit=200", p.ids, want)
		if p.next != nil || p.link != "" {
			t.Errorf("the only page has next_cursor %q and Link %q", deref(p.next), p.link)
		}
	})
	t.Run("limit=1", func(t *testing.T) {
		p := w.rawList(t, "/customers?limit=1")
		w.sameOrder(t, "limit=1", p.ids, want[:1])
		if p.next == nil {
			t.Error("no next_cursor after the first of many")
		}
	})
	t.Run("default limit is 50", func(t *testing.T) {
		all := slices.Clone(w.customers)
		for i := len(all); i < 51; i++ {
			all = append(all, w.addCustomer(t, fmt.Sprintf("Filler %02d", i), fmt.Sprintf("filler%02d@example.org", i)))
		}
		want := customerOrder(all, "-created_at")
		p := w.rawList(t, "/customers")
		w.sameOrder(t, "no limit", p.ids, want[:50])
		if p.next == nil || p.link == "" {
			t.Fatal("no next page after 50 of 51")
		}
		last := w.rawList(t, p.link)
		w.sameOrder(t, "the page after 50", last.ids, want[50:])
		p = w.rawList(t, "/customers?limit=200")
		w.sameOrder(t, "limit=200", p.ids, want)
		if p.next != nil || p.link != "" {
			t.Errorf("the only page has next_cursor %q and Link %q", deref(p.next), p.link)
		}
	})
}

func TestTotal(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	cs := w.customers
	customerCases := []struct {
		name   string
		params gen.ListCustomersParams
		keep   func(gen.Customer) bool
	}{
		{"no filter", gen.ListCustomersParams{}, func(gen.Customer) bool { return true }},
		{"status", gen.ListCustomersParams{Status: ptr(gen.CustomerStatusInactive)}, func(c gen.Customer) bool { return c.Status == gen.CustomerStatusInactive }},
		{"company and tag", gen.ListCustomersParams{Company: ptr("Compilers Inc"), Tag: &[]string{"vip"}},
			func(c gen.Customer) bool {
				return deref(c.Company) == "Compilers Inc" && slices.Contains(c.Tags, "vip")
			}},
		{"q", gen.ListCustomersParams{Q: ptr("hopper")}, func(c gen.Customer) bool { return listContains("hopper", c.Name, c.Email, deref(c.Company)) }},
		{"nothing matches", gen.ListCustomersParams{OwnerId: &[]gen.ObjectId{listUnknownID}}, func(gen.Customer) bool { return false }},
	}
	for _, tc := range customerCases {
		t.Run("customers "+tc.name, func(t *testing.T) {
			want := int64(len(listKeep(cs, tc.keep)))
			params := tc.params
			params.Limit = ptr(2)
			params.IncludeTotal = ptr(true)
			p := w.customersList(params)(t, nil)
			if p.total == nil || *p.total != want {
				t.Errorf("total %v, want %d", listTotal(p.total), want)
			}
			if len(p.ids) != int(min(want, 2)) {
				t.Errorf("%d records on a page of 2 out of %d", len(p.ids), want)
			}
			if p.next != nil {
				// The total counts every match, not the page, on every page.
				next := w.customersList(params)(t, p.next)
				if next.total == nil || *next.total != want {
					t.Errorf("total %v on the second page, want %d", listTotal(next.total), want)
				}
				viaLink := w.rawList(t, p.link)
				if viaLink.total == nil || *viaLink.total != want {
					t.Errorf("total %v following the Link, want %d", listTotal(viaLink.total), want)
				}
			}

			params.IncludeTotal = nil
			if p := w.customersList(params)(t, nil); p.hasTotal {
				t.Error("total without include_total")
			}
			params.IncludeTotal = ptr(false)
			if p := w.customersList(params)(t, nil); p.hasTotal {
				t.Error("total with include_total=false")
			}
		})
	}

	t.Run("users", func(t *testing.T) {
		want := len(listKeep(w.users, func(u gen.User) bool { return u.Role == gen.Member }))
		p := w.rawList(t, "/users?role=member&include_total=true&limit=1")
		if p.total == nil || *p.total != int64(want) {
			t.Errorf("total %v, want %d", listTotal(p.total), want)
		}
		if p := w.rawList(t, "/users?role=member&limit=1"); p.hasTotal {
			t.Error("total without include_total")
		}
	})
	t.Run("interactions", func(t *testing.T) {
		want := len(listKeep(w.interactions, func(it gen.Interaction) bool { return it.Type == gen.InteractionTypeCall }))
		p := w.rawList(t, "/interactions?type=Call&include_total=true&limit=1")
		if p.total == nil || *p.total != int64(want) {
			t.Errorf("total %v, want %d", listTotal(p.total), want)
		}
		if p := w.rawList(t, "/interactions?type=Call&limit=1"); p.hasTotal {
			t.Error("total without include_total")
		}
	})
	t.Run("timeline", func(t *testing.T) {
		grace := w.customers[0].Id
		want := len(listKeep(w.interactions, func(it gen.Interaction) bool { return it.CustomerId == grace && it.Status == gen.Open }))
		p := w.rawList(t, "/customers/"+grace+"/interactions?status=Open&include_total=true&limit=1")
		if p.total == nil || *p.total != int64(want) {
			t.Errorf("total %v, want %d", listTotal(p.total), want)
		}
		if p := w.rawList(t, "/customers/"+grace+"/interactions?status=Open&limit=1"); p.hasTotal {
			t.Error("total without include_total")
		}
	})
}

func TestQueryParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.bootstrap()
	grace := e.customer(admin, "Grace Hopper")
	timeline := "/customers/" + grace.Id + "/interactions"
	long := func(n int) string { return strings.Repeat("x", n) }

	cases := []struct {
		path  string
		names []string // the parameters the problem must name
	}{
		// Unknown parameters, misspelt ones first.
		{"/customers?curser=abc", []string{"?curser"}},
		{"/customers?Status=active", []string{"?Status"}},
		{"/customers?limit=2&offset=2", []string{"?offset"}},
		{"/customers?page=2", []string{"?page"}},
		{"/customers?sort_by=name", []string{"?sort_by"}},
		{"/customers?curser=abc&Status=active", []string{"?curser", "?Status"}},
		{"/users?search=ada", []string{"?search"}},
		{"/users?owner_id=" + admin.Id, []string{"?owner_id"}},
		{"/interactions?customer=" + grace.Id, []string{"?customer"}},
		{timeline + "?customer_id=" + grace.Id, []string{"?customer_id"}},
		{timeline + "?curser=abc", []string{"?curser"}},
		// Repeated single-valued parameters.
		{"/customers?status=active&status=inactive", []string{"?status"}},
		{"/customers?sort=name&sort=name", []string{"?sort"}},
		{"/customers?limit=2&limit=3", []string{"?limit"}},
		{"/customers?cursor=a&cursor=b", []string{"?cursor"}},
		{"/customers?company=a&company=b", []string{"?company"}},
		{"/customers?email=a@example.org&email=b@example.org", []string{"?email"}},
		{"/customers?q=a&q=b", []string{"?q"}},
		// Text that is blank once trimmed, as in bodies.
		{"/customers?q=%20", []string{"?q"}},
		{"/customers?tag=vip&tag=%E2%80%8B", []string{"?tag"}},
		{"/customers?company=%20%20", []string{"?company"}},
		{"/users?q=%C2%A0", []string{"?q"}},
		{"/interactions?q=%20", []string{"?q"}},
		{"/interactions?customer_id=" + admin.Id + "&customer_id=" + admin.Id, []string{"?customer_id"}},
		{timeline + "?scheduled_from=2026-01-01T00:00:00Z&scheduled_from=2026-02-01T00:00:00Z", []string{"?scheduled_from"}},
		{"/users?role=admin&role=member", []string{"?role"}},
		// Pairs that Go's query parser drops, with the filter they carry.
		{"/customers?owner_id=" + admin.Id + ";", []string{"?owner_id"}},
		{"/customers?limit=5;", []string{"?limit"}},
		{"/customers?status=inactive;x=1", []string{"?status"}},
		{"/customers?q=%zz", []string{"?q"}},
		{"/customers?%zz=1", []string{"?%zz"}},
		// Unknown parameters and invalid known ones are named together.
		{"/customers?limit=0&sort=x&status=y&owner_id=z&created_after=q&a=1&b=2", []string{"?limit", "?sort", "?status", "?owner_id", "?created_after", "?a", "?b"}},
		// A pair without a name is a parameter too, not the body.
		{"/customers?=x", []string{"?"}},
		{"/customers?limit=5&=", []string{"?"}},
		{"/customers?limit=5&status=active;", []string{"?status"}},
		// Malformed values.
		{"/customers?created_after=yesterday", []string{"?created_after"}},
		{"/customers?created_before=2026-13-45T00:00:00Z", []string{"?created_before"}},
		{"/customers?updated_since=now", []string{"?updated_since"}},
		{"/customers?owner_id=xyz", []string{"?owner_id"}},
		{"/customers?owner_id=0123456789ABCDEF01234567", []string{"?owner_id"}},
		{"/customers?sort=priority", []string{"?sort"}},
		{"/customers?sort=Name", []string{"?sort"}},
		{"/customers?sort=scheduled_at", []string{"?sort"}},
		{"/customers?include_total=maybe", []string{"?include_total"}},
		{"/customers?status=archived", []string{"?status"}},
		{"/customers?tag=" + long(51), []string{"?tag"}},
		{"/customers?q=" + long(101), []string{"?q"}},
		{"/interactions?type=meeting", []string{"?type"}},
		{"/interactions?status=open", []string{"?status"}},
		{"/interactions?scheduled_from=tomorrow", []string{"?scheduled_from"}},
		{"/interactions?created_after=yesterday&q=", []string{"?created_after", "?q"}},
		{timeline + "?created_before=now", []string{"?created_before"}},
		{"/interactions?scheduled_to=2026-02-30T00:00:00Z", []string{"?scheduled_to"}},
		{"/interactions?scheduled_from=2016-12-31T23:59:60Z", []string{"?scheduled_from"}},
		{"/customers?updated_since=2026-11-26T24:00:00Z", []string{"?updated_since"}},
		{"/interactions?user_id=xyz", []string{"?user_id"}},
		{"/interactions?customer_id=xyz", []string{"?customer_id"}},
		{"/interactions?sort=name", []string{"?sort"}},
		{timeline + "?type=call", []string{"?type"}},
		{timeline + "?sort=email", []string{"?sort"}},
		{timeline + "?user_id=" + long(24), []string{"?user_id"}},
		{"/users?role=owner", []string{"?role"}},
		{"/users?status=deleted", []string{"?status"}},
		{"/users?sort=email", []string{"?sort"}},
		{"/users?include_total=yes", []string{"?include_total"}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			res, body := e.raw(http.MethodGet, tc.path, admin.token, "", "")
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.names...)
		})
	}

	// The same parameters, well spelt and well formed, are accepted.
	for _, path := range []string{
		"/customers?status=active&sort=name&limit=2&include_total=true&created_after=2026-01-01T00:00:00Z&owner_id=" + admin.Id,
		"/customers?tag=vip&tag=navy&q=a&company=Compilers%20Inc&created_before=2099-01-01T00:00:00Z&updated_since=2026-01-01T00:00:00Z",
		"/customers?email=Grace@Example.com&owner_id=" + admin.Id + "&owner_id=" + admin.Id,
		"/interactions?type=Meeting&type=Call&status=Open&sort=-scheduled_at&scheduled_from=2026-01-01T00:00:00Z&scheduled_to=2099-01-01T00:00:00Z&user_id=" + admin.Id + "&customer_id=" + grace.Id,
		timeline + "?type=Call&status=InProgress&status=Open&sort=scheduled_at&user_id=" + admin.Id + "&user_id=" + admin.Id,
		"/interactions?q=kick-off&created_after=2026-01-01T00:00:00Z&created_before=2099-01-01T00:00:00Z",
		timeline + "?q=call&created_after=2026-01-01T00:00:00Z",
		"/users?role=admin&status=active&q=ada&email=ada@example.com&sort=-updated_at&include_total=false",
	} {
		res, body := e.raw(http.MethodGet, path, admin.token, "", "")
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, res.StatusCode, body)
		}
	}
}

// listTotal shows a total for a failure message.
func listTotal(total *int64) string {
	if total == nil {
		return "absent"
	}
	return fmt.Sprint(*total)
}

// TestCursorsOfTheLongestSortValues: a cursor carries its page's last sort
// value, so the longest names the API accepts, in the characters that JSON
// writes longest, must still give cursors that the API takes back.
func TestCursorsOfTheLongestSortValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.bootstrap()
	names := []string{
		strings.Repeat("\U0001F600", 200),   // 4 bytes each
		"a" + strings.Repeat("\u0001", 199), // written \u0001; controls alone are blank
		strings.Repeat("<&>", 66) + "<>",    // written \u003c by an HTML-safe encoder
		"a" + strings.Repeat("\u2028a", 99), // written \u2028
		strings.Repeat("\ufdfa", 200),       // 18 characters each once decomposed
	}
	for i, name := range names {
		quoted, _ := json.Marshal(name)
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
			fmt.Sprintf(`{"name":%s,"email":"long%d@example.com","company":"LongCo"}`, quoted, i))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("customer %d: %d %s", i, res.StatusCode, body)
		}
		res, body = e.raw(http.MethodPost, "/users", admin.token, "application/json",
			fmt.Sprintf(`{"name":%s,"email":"long%d@example.com","password":"long enough password"}`, quoted, i))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("user %d: %d %s", i, res.StatusCode, body)
		}
	}
	for _, list := range []string{"/customers?company=LongCo&sort=name&limit=1", "/customers?company=LongCo&sort=-name&limit=1", "/users?sort=name&limit=1"} {
		seen := 0
		for path := list; path != ""; {
			res, body := e.raw(http.MethodGet, path, admin.token, "", "")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s after %d records: %d %s", list, seen, res.StatusCode, body)
			}
			var page struct {
				Data       []json.RawMessage `json:"data"`
				NextCursor *string           `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			seen += len(page.Data)
			path = ""
			if page.NextCursor != nil {
				path = list + "&cursor=" + url.QueryEscape(*page.NextCursor)
			}
		}
		if want := len(names) + map[bool]int{true: 1}[strings.HasPrefix(list, "/users")]; seen != want {
			t.Errorf("%s: %d records in all, want %d", list, seen, want)
		}
	}
}

// TestSortByNameAsPeopleRead: sort=name ignores case and accents, as a list of
// names in a CRM reads; byte order put lower-case and accented names after Z.
func TestSortByNameAsPeopleRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.bootstrap()
	for i, name := range []string{"zoe Zed", "Øystein", "Émile Zola", "Bob Upper", "Łukasz", "Adam Apple", "Ærø", "aaron lower", "Álvaro Díaz"} {
		res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
			fmt.Sprintf(`{"name":%q,"email":"n%d@example.com","company":"Names"}`, name, i))
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", name, res.StatusCode, body)
		}
	}
	want := []string{"aaron lower", "Adam Apple", "Ærø", "Álvaro Díaz", "Bob Upper", "Émile Zola", "Łukasz", "Øystein", "zoe Zed"}
	for _, sort := range []string{"name", "-name"} {
		var got []string
		for path := "/customers?company=Names&limit=4&sort=" + sort; path != ""; {
			res, body := e.raw(http.MethodGet, path, admin.token, "", "")
			var page struct {
				Data       []gen.Customer `json:"data"`
				NextCursor *string        `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &page); res.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("%s: %d %s", path, res.StatusCode, body)
			}
			for _, c := range page.Data {
				got = append(got, c.Name)
			}
			path = ""
			if page.NextCursor != nil {
				path = "/customers?company=Names&limit=4&sort=" + sort + "&cursor=" + url.QueryEscape(*page.NextCursor)
			}
		}
		expected := slices.Clone(want)
		if sort == "-name" {
			slices.Reverse(expected)
		}
		if !slices.Equal(got, expected) {
			t.Errorf("sort=%s: %q, want %q", sort, got, expected)
		}
	}
}

// TestUpdatedSinceOnEveryList: every list takes updated_since (at or after,
// inclusive), so that a sync job can follow users, customers and
// interactions alike.
func TestUpdatedSinceOnEveryList(t *testing.T) {
	t.Parallel()
	w := newListWorld(t)
	since := func(ts []time.Time) time.Time { return slices.MaxFunc(ts, time.Time.Compare) }
	changedSince := func(at time.Time) func(u time.Time) bool { return func(u time.Time) bool { return !u.Before(at) } }

	// The latest change of each kind is the cut: only records changed then or later.
	var userTimes, interactionTimes []time.Time
	for _, u := range w.users {
		userTimes = append(userTimes, u.UpdatedAt)
	}
	for _, it := range w.interactions {
		interactionTimes = append(interactionTimes, it.UpdatedAt)
	}
	userCut, interactionCut := since(userTimes), since(interactionTimes)
	timeline := w.customers[0].Id

	wantUsers := listKeep(w.users, func(u gen.User) bool { return changedSince(userCut)(u.UpdatedAt) })
	got := w.walk(t, 2, w.usersList(gen.ListUsersParams{Limit: ptr(2), UpdatedSince: &userCut, Sort: ptr(gen.ListUsersParamsSortUpdatedAt)}), nil)
	w.sameOrder(t, "users updated since the last change", got, userOrder(wantUsers, "updated_at"))

	wantIts := listKeep(w.interactions, func(it gen.Interaction) bool { return changedSince(interactionCut)(it.UpdatedAt) })
	got = w.walk(t, 2, w.interactionsList(gen.ListInteractionsParams{Limit: ptr(2), UpdatedSince: &interactionCut, Sort: ptr(gen.ListInteractionsParamsSortUpdatedAt)}), nil)
	w.sameOrder(t, "interactions updated since the last change", got, interactionOrder(wantIts, "updated_at"))

	// A cut before the changes, on the timeline: its changed interactions and
	// those created after the cut.
	cut := w.interactions[3].CreatedAt
	wantTimeline := listKeep(w.interactions, func(it gen.Interaction) bool {
		return it.CustomerId == timeline && changedSince(cut)(it.UpdatedAt)
	})
	got = w.walk(t, 2, w.timelineList(timeline, gen.ListCustomerInteractionsParams{Limit: ptr(2), UpdatedSince: &cut, Sort: ptr(gen.ListCustomerInteractionsParamsSortMinusUpdatedAt)}), nil)
	w.sameOrder(t, "the timeline updated since the fourth interaction", got, interactionOrder(wantTimeline, "-updated_at"))
	if len(wantUsers) == 0 || len(wantIts) == 0 || len(wantTimeline) < 2 || len(wantTimeline) == len(listKeep(w.interactions, func(it gen.Interaction) bool { return it.CustomerId == timeline })) {
		t.Fatalf("the fixture does not split: %d users, %d interactions, %d of the timeline", len(wantUsers), len(wantIts), len(wantTimeline))
	}
}
