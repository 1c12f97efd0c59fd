package api

import (
	"cmp"
	"net/http"
	"time"
	"unicode/utf8"
)

// A lookup by id is the one operation fast enough for the API's own work to
// show beside the database's (README, Performance), and writing its answer
// with encoding/json, through the generated response writer, was the largest
// part of that work: reflection over the record's fields, each timestamp
// formatted, copied and compacted again, the body copied once more, the
// headers formatted with fmt. So the answers of GET /customers/{id},
// /interactions/{id}, /users/{id} and /users/me are written by the appenders
// below, the record's fields in the order of its gen type. They write exactly
// the bytes that encoding/json writes for the gen type
// (TestRecordJSONIsEncodingJSONs checks every field, escapes and absent
// fields); every other answer is encoding/json's.

// recordAnswer is a 200 answer holding one record, already encoded, with its
// entity tag. It is the answer of each lookup by id.
type recordAnswer struct {
	json []byte
	etag string
}

func (a recordAnswer) VisitGetCustomerResponse(w http.ResponseWriter) error    { return a.write(w) }
func (a recordAnswer) VisitGetInteractionResponse(w http.ResponseWriter) error { return a.write(w) }
func (a recordAnswer) VisitGetUserResponse(w http.ResponseWriter) error        { return a.write(w) }
func (a recordAnswer) VisitGetCurrentUserResponse(w http.ResponseWriter) error { return a.write(w) }

// write sends the answer as the generated response writers do: the same
// headers, status and body. The headers are set by their canonical names,
// which Header.Set would work out (and allocate) again for every answer.
func (a recordAnswer) write(w http.ResponseWriter) error {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Etag"] = []string{a.etag}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(a.json)
	return err
}

// jsonContentType is shared by every answer and never modified.
var jsonContentType = []string{"application/json"}

// jsonObject appends an object's members to a buffer, as encoding/json
// writes them. The first error (a time outside what RFC 3339 can write)
// sticks, and is what encoding/json would have failed with.
type jsonObject struct {
	b   []byte
	err error
}

// newJSONObject starts an object in a buffer the size of a typical record.
func newJSONObject() jsonObject {
	return jsonObject{b: append(make([]byte, 0, 512), '{')}
}

// key starts a member; names are the gen types' JSON names, which need no
// escapes.
func (o *jsonObject) key(name string) {
	if len(o.b) > 1 { // past the opening brace: a member before this one
		o.b = append(o.b, ',')
	}
	o.b = append(append(append(o.b, '"'), name...), '"', ':')
}

func (o *jsonObject) string(name, value string) {
	o.key(name)
	o.b = appendJSONString(o.b, value)
}

// optionalString is a member written only when set (omitempty on a pointer).
func (o *jsonObject) optionalString(name string, value *string) {
	if value != nil {
		o.string(name, *value)
	}
}

// strings is a list of strings, null when nil as encoding/json writes a nil
// slice.
func (o *jsonObject) strings(name string, values []string) {
	o.key(name)
	if values == nil {
		o.b = append(o.b, "null"...)
		return
	}
	o.b = append(o.b, '[')
	for i, v := range values {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, v)
	}
	o.b = append(o.b, ']')
}

func (o *jsonObject) time(name string, t time.Time) {
	o.key(name)
	// MarshalJSON's text: RFC 3339 with the fraction that the time has.
	text, err := t.AppendText(append(o.b, '"'))
	if err != nil {
		o.err = cmp.Or(o.err, err)
		return
	}
	o.b = append(text, '"')
}

func (o *jsonObject) optionalTime(name string, t *time.Time) {
	if t != nil {
		o.time(name, *t)
	}
}

// end closes the object and ends the line, as json.Encoder does.
func (o *jsonObject) end() ([]byte, error) {
	return append(o.b, '}', '\n'), o.err
}

// appendJSONString appends s as encoding/json writes a string by default:
// quotes, backslashes and control characters escaped, and <, >, &, U+2028
// and U+2029 too; bytes that are not UTF-8 become U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
