package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The OpenAPI document validates, lists exactly the server's routes, and
// every route it lists is served (not the mux's "no such route").
func TestOpenAPIRoutes(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json does not validate: %v", err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	var served []string
	for _, rt := range routes {
		served = append(served, rt.method+" "+rt.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("documented but not served: %s", d)
		}
	}
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("served but not documented: %s", s)
		}
	}

	// Each documented route answers as itself: without a token, 401 for
	// the protected ones, the route's own answer for the open ones.
	w := newWorld(t)
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		path = strings.NewReplacer("{vm}", "a-1", "{id}", "1").Replace(path)
		r := w.do(method, path, "", nil)
		if strings.Contains(string(r.body), "no such API route") || r.code == http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d %s: not served", method, path, r.code, r.body)
		}
		op := doc.Paths.Find(strings.SplitN(d, " ", 2)[1]).GetOperation(method)
		if (op.Security != nil && len(*op.Security) != 0) == (r.code != http.StatusUnauthorized) {
			t.Errorf("%s %s without a token: %d; the document says security %v", method, path, r.code, op.Security)
		}
		if op.Responses.Status(r.code) == nil && op.Responses.Default() == nil {
			t.Errorf("%s %s answered %d, which the document does not list", method, path, r.code)
		}
	}
}
