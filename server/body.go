package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// The validator decodes JSON bodies with kin-openapi's decoder, which stops
// after the first JSON value: `{"name":"A"} {"$where":1}` would pass as
// `{"name":"A"}`. This decoder refuses anything after the value, so what is
// validated is the whole body. It also serves "+json" types such as
// application/merge-patch+json, which fall back to the application/json decoder.
func init() {
	openapi3filter.RegisterBodyDecoder("application/json", wholeJSONBody)
}

var errTrailingData = errors.New("unexpected data after the JSON value")

func wholeJSONBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	return value, nil
}
