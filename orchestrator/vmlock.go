package orchestrator

import "context"

// ManagedVMs returns the names of every managed VM on the engine's host,
// sorted: what commands that act on "all VMs" lock before they start.
func (e *engine) ManagedVMs(ctx context.Context) ([]string, error) {
	doms, err := e.selectManaged(ctx, nil)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(doms))
	for i, d := range doms {
		names[i] = d.Name
	}
	return names, nil
}
