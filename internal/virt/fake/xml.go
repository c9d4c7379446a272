package fake

import "github.com/legacyvm/legacyvm/internal/virt"

// domainXML, networkXML and filterXML fill the XML fields of observations.
// The fake does not render libvirt XML yet: they return "" (documented on
// the observation helpers; callers must not parse XML from the fake).
func domainXML(virt.DomainSpec, string) string { return "" }

func networkXML(virt.NetworkSpec, string) string { return "" }

func filterXML(*filter) string { return "" }
