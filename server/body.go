package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// The validator decodes JSON bodies with kin-openapi's decoder, which stops
// after the first JSON value: `{"name":"A"} {"$where":1}` would pass as
// `{"name":"A"}`. This decoder refuses anything after the value, so what is
// validated is the whole body, and text the database should not hold (see
// unusableBodyText). kin-openapi registers its own decoder for
// application/merge-patch+json, so this one replaces that too.
//
// Forms (the OAuth 2.0 sign-in and refresh) are decoded by kin-openapi's own
// decoder, once each field is known to be given once (see onceEachField).
func init() {
	openapi3filter.RegisterBodyDecoder("application/json", wholeJSONBody)
	openapi3filter.RegisterBodyDecoder("application/merge-patch+json", wholeJSONBody)
	form := openapi3filter.RegisteredBodyDecoder("application/x-www-form-urlencoded")
	openapi3filter.RegisterBodyDecoder("application/x-www-form-urlencoded", onceEachField(form))
}

// onceEachField refuses a form that gives a field more than once, before
// decode reads it: the decoder would take the first username of
// "username=a&username=b", where RFC 6749 (sections 3.1 and 3.2) says a
// parameter must not be repeated, as the API says of query parameters.
func onceEachField(decode openapi3filter.BodyDecoder) openapi3filter.BodyDecoder {
	return func(body io.Reader, h http.Header, schema *openapi3.SchemaRef, fn openapi3filter.EncodingFn) (any, error) {
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(raw, []byte("\ufeff")) {
			return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errByteOrderMark}
		}
		fields, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
		}
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			pointer := "/" + escapePointer(name)
			if len(fields[name]) > 1 {
				return nil, &bodyMemberError{pointer, "may be given only once"}
			}
			// As in JSON bodies: text that is not text would cost a sign-in
			// its password hash before failing as wrong credentials.
			if v := fields[name][0]; !utf8.ValidString(name) || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				return nil, &bodyMemberError{strings.ToValidUTF8(pointer, "\ufffd"), "must be UTF-8 text without NUL characters"}
			}
		}
		return decode(bytes.NewReader(raw), h, schema, fn)
	}
}

var (
	errTrailingData = errors.New("unexpected data after the JSON value")
	// errByteOrderMark: JSON must not start with one (RFC 8259 section 8.1),
	// nor a form. Some editors and shells write it; Go's decoder would name
	// the character 'ï', which tells the client nothing.
	errByteOrderMark = errors.New("the JSON value starts with a byte order mark")
)

func wholeJSONBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte("\ufeff")) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errByteOrderMark}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	// Most bodies hold neither: a walk that only counts decides, and the walk
	// that names the member runs when there is one to name.
	var c textCount
	c.add(value)
	if notUTF8 := c.replacements > 0 && c.replacements > sentReplacements(raw); c.nuls > 0 || notUTF8 {
		return nil, unusableBodyText(value, "", notUTF8)
	}
	// After the text check: two names that are not UTF-8 decode alike.
	if pointer, found := repeatedMember(raw); found {
		return nil, &bodyMemberError{pointer, "may be given only once"}
	}
	return value, nil
}

// repeatedMember finds a member name given twice in one object of raw, valid
// JSON, and returns its pointer. Go's decoder keeps the last of them, other
// readers the first: `{"role":"member","role":"admin"}` must not mean one
// thing to a proxy that checks it and another to the server. Forms are held
// to the same rule (onceEachField).
func repeatedMember(raw []byte) (pointer string, found bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var open []*jsonLevel // the objects and arrays the next token is in
	for {
		token, err := dec.Token()
		if err != nil {
			return "", false // the end: raw was decoded before, so nothing else fails
		}
		var in *jsonLevel
		if len(open) > 0 {
			in = open[len(open)-1]
		}
		if in != nil && in.names != nil && in.nameNext && token != json.Delim('}') {
			name := token.(string)
			in.member = in.pointer + "/" + escapePointer(name)
			if in.names[name] {
				return in.member, true
			}
			in.names[name] = true
			in.nameNext = false
			continue
		}
		switch token {
		case json.Delim('{'):
			open = append(open, &jsonLevel{pointer: in.next(), names: map[string]bool{}, nameNext: true})
		case json.Delim('['):
			open = append(open, &jsonLevel{pointer: in.next()})
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
			if len(open) > 0 {
				open[len(open)-1].valueRead()
			}
		default:
			in.valueRead()
		}
	}
}

// jsonLevel is an object or array that repeatedMember is in.
type jsonLevel struct {
	pointer  string
	names    map[string]bool // the object's member names so far; nil for an array
	nameNext bool            // in an object, a member name comes next
	member   string          // the pointer of the member whose value comes next
	items    int             // in an array, the items read
}

// next is the pointer of the value that comes next in l ("" for the body).
func (l *jsonLevel) next() string {
	switch {
	case l == nil:
		return ""
	case l.names == nil:
		return l.pointer + "/" + strconv.Itoa(l.items)
	}
	return l.member
}

// valueRead records that a value of l was read whole.
func (l *jsonLevel) valueRead() {
	switch {
	case l == nil:
	case l.names == nil:
		l.items++
	default:
		l.nameNext = true
	}
}

// textCount counts, in the strings and member names of a decoded body, NUL
// characters and U+FFFD.
type textCount struct{ nuls, replacements int }

func (c *textCount) add(v any) {
	switch v := v.(type) {
	case string:
		c.text(v)
	case map[string]any:
		for name, member := range v {
			c.text(name)
			c.add(member)
		}
	case []any:
		for _, item := range v {
			c.add(item)
		}
	}
}

func (c *textCount) text(s string) {
	c.nuls += strings.Count(s, "\x00")
	c.replacements += strings.Count(s, "\uFFFD")
}

// sentReplacements counts the U+FFFD characters a raw body holds as such or
// as the escape \ufffd. When the decoded body holds more, the decoder made
// them of bytes that are not UTF-8, or of a lone surrogate escape (\ud800).
func sentReplacements(raw []byte) int {
	return bytes.Count(raw, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
}

// bodyMemberError names a member of a body that cannot be taken as sent.
type bodyMemberError struct{ pointer, detail string }

func (e *bodyMemberError) Error() string { return e.pointer + " " + e.detail }

// unusableBodyText walks a decoded body, members in order, to the first text
// that is not fit to store: a NUL character, which no client means to send
// and which MongoDB refuses in names; or bytes that are not UTF-8, which Go's
// decoder would silently turn into U+FFFD. notUTF8 says the raw body held text that is not
// UTF-8 (see sentReplacements): the decoder replaced it with U+FFFD, which is
// where it is found.
func unusableBodyText(v any, pointer string, notUTF8 bool) error {
	check := func(text, pointer string) error {
		switch {
		case strings.ContainsRune(text, 0):
			return &bodyMemberError{pointer, "must not hold NUL characters"}
		case notUTF8 && strings.ContainsRune(text, utf8.RuneError):
			return &bodyMemberError{pointer, "must be UTF-8 text"}
		}
		return nil
	}
	switch v := v.(type) {
	case string:
		return check(v, pointer)
	case map[string]any:
		for _, name := range slices.Sorted(maps.Keys(v)) {
			member := pointer + "/" + escapePointer(name)
			if err := check(name, member); err != nil {
				return err
			}
			if err := unusableBodyText(v[name], member, notUTF8); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range v {
			if err := unusableBodyText(item, pointer+"/"+strconv.Itoa(i), notUTF8); err != nil {
				return err
			}
		}
	}
	return nil
}
