package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/oapi-codegen/nullable"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/store"
)

// defaultLimit is the page size when the request names none (the spec's default).
const defaultLimit = 50

// listQuery is what every list operation reads from its parameters.
type listQuery struct {
	resource string // "users", "customers" or "interactions": a cursor works for one only
	sort     string // as in the sort parameter: "-created_at", "name", …
	limit    *int
	cursor   *string
	total    *bool
}

// options turns the query into store.ListOptions, decoding the cursor.
func (h *Handler) options(q listQuery) (store.ListOptions, error) {
	field, desc := strings.CutPrefix(q.sort, "-")
	opts := store.ListOptions{
		Sort:  store.Sort{Field: field, Desc: desc},
		Limit: defaultLimit,
		Count: deref(q.total),
	}
	if q.limit != nil {
		opts.Limit = *q.limit
	}
	if q.cursor != nil {
		pos, err := h.cursors.decode(*q.cursor, q.resource, q.sort)
		if err != nil {
			return opts, err
		}
		opts.After = &pos
	}
	return opts, nil
}

// listPage is what every list response carries besides its items.
type listPage struct {
	next  nullable.Nullable[string]
	total *int64
	link  *string // the Link header: the next page, when there is one
}

// page builds the cursor and Link header for the page after p.
func pageOf[T any](ctx context.Context, h *Handler, q listQuery, p store.Page[T]) listPage {
	out := listPage{next: nullable.NewNullNullable[string](), total: p.Total}
	if p.Next == nil {
		return out
	}
	cursor := h.cursors.encode(q.resource, q.sort, *p.Next)
	out.next = nullable.NewNullableWithValue(cursor)
	u := *requestInfoFrom(ctx).url
	query := u.Query()
	query.Set("cursor", cursor)
	u.RawQuery = query.Encode()
	out.link = ptr(`<` + u.RequestURI() + `>; rel="next"`)
	return out
}

// cursorCodec turns page positions into opaque, tamper-evident cursors: the
// position as JSON, base64url-encoded, then "." and an HMAC of it. A cursor
// carries the resource and sort it was made for, and refuses to be used for
// another.
type cursorCodec struct{ key []byte }

type cursorPayload struct {
	Resource string     `json:"r"`
	Sort     string     `json:"s"`
	Time     *time.Time `json:"t,omitempty"` // the sort value, when it is a time
	Text     *string    `json:"x,omitempty"` // the sort value, when it is text
	ID       string     `json:"i"`
}

func (c cursorCodec) encode(resource, sort string, p store.Position) string {
	payload := cursorPayload{Resource: resource, Sort: sort, ID: p.ID.Hex()}
	switch v := p.Value.(type) {
	case time.Time:
		payload.Time = &v
	case string:
		payload.Text = &v
	}
	// Not HTML-safe: "<" would be written \u003c, six bytes for one.
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(payload) // cannot fail: plain strings and times
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(body) + "." + enc.EncodeToString(c.sign(body))
}

func (c cursorCodec) decode(cursor, resource, sort string) (store.Position, error) {
	invalid := invalidParameter("cursor", "is not a cursor this API issued; pass next_cursor from the previous page unchanged")
	// Strict: a changed last character must not decode to the same bytes.
	enc := base64.RawURLEncoding.Strict()
	bodyPart, sigPart, ok := strings.Cut(cursor, ".")
	if !ok {
		return store.Position{}, invalid
	}
	body, err1 := enc.DecodeString(bodyPart)
	sig, err2 := enc.DecodeString(sigPart)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, c.sign(body)) {
		return store.Position{}, invalid
	}
	var payload cursorPayload
	if err := json.Unmarshal(body, &payload); err != nil {
		return store.Position{}, invalid
	}
	if payload.Resource != resource || payload.Sort != sort {
		return store.Position{}, invalidParameter("cursor", "was issued for another list or sort order; use it with the same sort as the page it came from")
	}
	id, err := bson.ObjectIDFromHex(payload.ID)
	if err != nil {
		return store.Position{}, invalid
	}
	pos := store.Position{ID: id}
	switch {
	case payload.Time != nil:
		pos.Value = *payload.Time
	case payload.Text != nil:
		pos.Value = *payload.Text
	}
	return pos, nil
}

func (c cursorCodec) sign(body []byte) []byte {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(body)
	return mac.Sum(nil)[:16]
}

// idParameter parses an optional id query parameter.
func idParameter(hex *string, name string) (*bson.ObjectID, error) {
	if hex == nil {
		return nil, nil
	}
	id, err := bson.ObjectIDFromHex(*hex)
	if err != nil {
		return nil, invalidParameter(name, "must be 24 lower-case hex digits")
	}
	return &id, nil
}

// idsParameter is idParameter for a parameter given any number of times.
func idsParameter(hexes []string, name string) ([]bson.ObjectID, error) {
	ids := make([]bson.ObjectID, len(hexes))
	for i, hex := range hexes {
		id, err := idParameter(&hex, name)
		if err != nil {
			return nil, err
		}
		ids[i] = *id
	}
	return ids, nil
}

// enumValues are the values of an enum parameter given any number of times.
func enumValues[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
