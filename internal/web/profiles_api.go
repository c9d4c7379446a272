package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// servedProfile returns the request's {profile} if the server serves it
// and the caller may see it; otherwise it has written 404 (a profile
// outside a scoped token does not exist for it).
func (s *Server) servedProfile(w http.ResponseWriter, r *http.Request, c *caller) (string, bool) {
	name := r.PathValue("profile")
	if s.opts.Profiles == nil || !slices.Contains(s.opts.Profiles.Names(), name) || !c.Sees(name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("profile %q: %v (the server serves the profiles given with legacyvm serve --profile)", name, virt.ErrNotFound))
		return "", false
	}
	return name, true
}

// profileAction starts a plan, apply or destroy of the request's profile.
// The action's result is the plan ([]HostPlan).
func (s *Server) profileAction(w http.ResponseWriter, r *http.Request, c *caller, kind string, run func(context.Context, string, event.Hook) ([]HostPlan, error)) {
	name, ok := s.servedProfile(w, r, c)
	if !ok {
		return
	}
	s.runAction(w, r, c, kind, name, "", "", func(ctx context.Context, hook event.Hook) (any, error) {
		hps, err := run(ctx, name, hook)
		if hps == nil {
			return nil, err
		}
		return hps, err
	})
}

func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request, c *caller) {
	s.profileAction(w, r, c, "plan", func(ctx context.Context, p string, h event.Hook) ([]HostPlan, error) {
		return s.opts.Profiles.Plan(ctx, p, h)
	})
}

func (s *Server) handleApply(w http.ResponseWriter, r *http.Request, c *caller) {
	s.profileAction(w, r, c, "apply", func(ctx context.Context, p string, h event.Hook) ([]HostPlan, error) {
		return s.opts.Profiles.Apply(ctx, p, h)
	})
}

func (s *Server) handleDestroy(w http.ResponseWriter, r *http.Request, c *caller) {
	s.profileAction(w, r, c, "destroy", func(ctx context.Context, p string, h event.Hook) ([]HostPlan, error) {
		return s.opts.Profiles.Destroy(ctx, p, h)
	})
}
