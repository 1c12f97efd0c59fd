package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/opencrm/crm/gen"
)

// TestDeletionsFeed: GET /deletions lists every deleted record once, oldest
// deletion first — the cascade's interactions too, refused deletes not — by
// kind of record and since a moment, page by page through the Link header.
func TestDeletionsFeed(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	member := e.addUser(admin, "Mia Member", gen.Member)
	leaving := e.addUser(admin, "Leaving User", gen.Member)
	doomed, kept := e.customer(admin, "Doomed Customer"), e.customer(admin, "Kept Customer")
	cascaded := []string{e.interaction(admin, doomed, gen.InteractionTypeCall).Id, e.interaction(admin, doomed, gen.InteractionTypeNote).Id}
	alone := e.interaction(admin, kept, gen.InteractionTypeTask)
	e.interaction(admin, kept, gen.InteractionTypeEmail)

	del := func(path string, want int) {
		t.Helper()
		if res, body := e.raw(http.MethodDelete, path, admin.token, "", ""); res.StatusCode != want {
			t.Fatalf("DELETE %s: %d %s, want %d", path, res.StatusCode, body, want)
		}
	}
	del("/interactions/"+alone.Id, http.StatusNoContent)
	del("/customers/"+kept.Id, http.StatusConflict) // refused: still has an interaction
	del("/customers/"+doomed.Id+"?cascade=true", http.StatusNoContent)
	time.Sleep(2 * time.Millisecond) // deletions are stamped to the millisecond
	since := time.Now().UTC()
	del("/users/"+leaving.Id, http.StatusNoContent)

	type entry struct{ record, id string }
	list := func(query string) (entries []entry, total *int64, link string) {
		t.Helper()
		res, body := e.raw(http.MethodGet, "/deletions"+query, member.token, "", "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /deletions%s: %d %s", query, res.StatusCode, body)
		}
		var page gen.DeletionList
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Data {
			entries = append(entries, entry{string(d.Record), d.Id})
		}
		if m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(res.Header.Get("Link")); m != nil {
			link = m[1]
		}
		return entries, page.Total, link
	}

	order, total, _ := list("?include_total=true") // as the server lists them
	want := []entry{{"interaction", alone.Id}, {"interaction", cascaded[0]}, {"interaction", cascaded[1]}, {"customer", doomed.Id}, {"user", leaving.Id}}
	if len(order) != len(want) {
		t.Fatalf("deletions %v, want %v", order, want)
	}
	// The cascade's two at once, in either order.
	all := slices.Clone(order)
	slices.SortFunc(all[1:3], func(a, b entry) int { return slices.Index(cascaded, a.id) - slices.Index(cascaded, b.id) })
	if !slices.Equal(all, want) {
		t.Errorf("deletions %v, want %v (the cascade's in either order)", order, want)
	}
	if total == nil || *total != int64(len(want)) {
		t.Errorf("total %v, want %d", total, len(want))
	}
	if got, _, _ := list("?record=customer&record=user"); !slices.Equal(got, want[3:]) {
		t.Errorf("deletions of customers and users %v, want %v", got, want[3:])
	}
	if got, _, _ := list("?since=" + url.QueryEscape(since.Format(time.RFC3339Nano))); !slices.Equal(got, want[4:]) {
		t.Errorf("deletions since %v: %v, want %v", since, got, want[4:])
	}
	// Before the oldest deletion kept, a job would miss some: it must read everything again.
	tooOld := time.Now().Add(-91 * 24 * time.Hour).UTC().Format(time.RFC3339)
	res, body := e.raw(http.MethodGet, "/deletions?since="+tooOld, member.token, "", "")
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?since")

	// One at a time, following the Link header.
	var walked []entry
	next := "?limit=1"
	for range len(want) + 1 {
		page, _, link := list(next)
		walked = append(walked, page...)
		if link == "" {
			break
		}
		u, err := url.Parse(link)
		if err != nil || u.Path != "/deletions" {
			t.Fatalf("Link %q", link)
		}
		next = "?" + u.RawQuery
	}
	if !slices.Equal(walked, order) {
		t.Errorf("one at a time: %v, want %v", walked, order)
	}
}
