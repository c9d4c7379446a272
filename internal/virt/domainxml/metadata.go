package domainxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Namespace is the XML namespace of legacyvm's metadata element inside a
// domain's or network's <metadata>. It never changes: objects already
// defined carry it.
const Namespace = "https://legacyvm.dev/xmlns/1.0"

// MetadataPrefix is the namespace prefix MetadataXML writes. Adapters that
// use virDomainSetMetadata pass it as the key and Namespace as the URI.
const MetadataPrefix = "legacyvm"

// MetadataElement is the local name of legacyvm's metadata element.
const MetadataElement = "owner"

// Namespace and element of libosinfo's operating-system annotation, which
// virt-manager and virt-install read.
const (
	libosinfoNamespace = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
	libosinfoPrefix    = "libosinfo"
	libosinfoWin7      = "http://microsoft.com/win/7"
)

// metadataXML is the wire form of virt.Metadata. Element names are local;
// marshalPrefixed adds the namespace prefix and unmarshalling matches on
// local names (the namespace is checked by ParseMetadata).
type metadataXML struct {
	XMLName     xml.Name       `xml:"owner"`
	Profile     string         `xml:"profile"`
	VM          string         `xml:"vm,omitempty"`
	Instance    string         `xml:"instance,omitempty"`
	Network     string         `xml:"network,omitempty"`
	SpecHash    string         `xml:"spec-hash,omitempty"`
	Image       string         `xml:"image,omitempty"`
	ImageRef    *imageRefXML   `xml:"image-ref"`
	ImageBuild  string         `xml:"image-build,omitempty"`
	Volumes     *volumesXML    `xml:"volumes"`
	Filters     *filtersXML    `xml:"filters"`
	License     *licenseRefXML `xml:"license"`
	Policy      *policyRefXML  `xml:"policy"`
	Created     string         `xml:"created,omitempty"`
	Provisioned bool           `xml:"provisioned,omitempty"`
	StopRequest string         `xml:"stop-requested,omitempty"`
	Doors       *doorsXML      `xml:"doors"`
}

type doorsXML struct {
	Door []doorRefXML `xml:"door"`
}

type doorRefXML struct {
	Kind           string   `xml:"kind,attr"`
	Name           string   `xml:"name,attr"`
	Scope          string   `xml:"scope,attr,omitempty"`
	Listen         string   `xml:"listen,attr,omitempty"`
	Port           uint16   `xml:"port,attr"`
	Protocol       string   `xml:"protocol,attr,omitempty"`
	MaxConnections int      `xml:"max-connections,attr,omitempty"`
	To             string   `xml:"to,attr,omitempty"`
	From           []string `xml:"from"`
}

// volumesXML and filtersXML wrap the lists so that an empty list writes no
// element at all (encoding/xml writes the parents of "a>b" paths anyway).
type volumesXML struct {
	Volume []volumeRefXML `xml:"volume"`
}

type filtersXML struct {
	Filter []string `xml:"filter"`
}

// imageRefXML is the registered image version a disk was cloned from.
type imageRefXML struct {
	Name    string `xml:"name,attr"`
	Version int    `xml:"version,attr"`
}

type volumeRefXML struct {
	Pool string `xml:"pool,attr"`
	Name string `xml:"name,attr"`
	Role string `xml:"role,attr,omitempty"`
}

// licenseRefXML holds exactly the fields of virt.LicenseRef: a label, the
// edition and channel, a keyed fingerprint and the last key group. There is
// deliberately no place for a key.
type licenseRefXML struct {
	Label       string `xml:"label,attr"`
	Edition     string `xml:"edition,attr,omitempty"`
	Channel     string `xml:"channel,attr,omitempty"`
	Fingerprint string `xml:"fingerprint,attr,omitempty"`
	SecretID    string `xml:"fingerprint-secret,attr,omitempty"`
	LastGroup   string `xml:"last-group,attr,omitempty"`
	Seats       int    `xml:"seats,attr,omitempty"`
}

type policyRefXML struct {
	Name       string `xml:"name,attr"`
	Baseline   string `xml:"baseline,attr,omitempty"`
	Schedule   string `xml:"schedule,attr,omitempty"`
	Keep       int    `xml:"keep,attr,omitempty"`
	MaxAge     string `xml:"max-age,attr,omitempty"`
	Memory     bool   `xml:"memory,attr,omitempty"`
	OnShutdown string `xml:"on-shutdown,attr,omitempty"`
}

// libosinfoXML is libosinfo's <libosinfo:libosinfo><libosinfo:os id=.../>.
type libosinfoXML struct {
	XMLName xml.Name `xml:"libosinfo"`
	OS      struct {
		ID string `xml:"id,attr"`
	} `xml:"os"`
}

// MetadataXML renders m as legacyvm's metadata element:
//
//	<legacyvm:owner xmlns:legacyvm="https://legacyvm.dev/xmlns/1.0">
//	  <legacyvm:profile>lab</legacyvm:profile> ...
//	</legacyvm:owner>
//
// Created is written in RFC 3339 (UTC, whole seconds). The result is what
// goes inside <metadata> (next to libosinfo's element) and what an adapter
// passes to virDomainSetMetadata. m must be non-nil and name a profile. A
// field that looks like a Windows product key is refused: the metadata never
// holds a secret.
func MetadataXML(m *virt.Metadata) (string, error) {
	w, err := metadataWire(m)
	if err != nil {
		return "", err
	}
	return marshalPrefixed(w, MetadataPrefix, Namespace, "")
}

// MetadataFragment renders m like MetadataXML but without the namespace:
// <owner><profile>lab</profile>...</owner>. This is the form
// virDomainSetMetadata(VIR_DOMAIN_METADATA_ELEMENT) expects, with key
// MetadataPrefix and uri Namespace: libvirt then declares the namespace on
// the element and puts every element in it, which gives exactly the
// MetadataXML form. (Passing the MetadataXML form there fails: libvirt
// cannot declare the prefix a second time.) virDomainGetMetadata returns
// this naked form too; ParseMetadata reads both.
func MetadataFragment(m *virt.Metadata) (string, error) {
	w, err := metadataWire(m)
	if err != nil {
		return "", err
	}
	b, err := xml.MarshalIndent(w, "", "  ")
	if err != nil {
		return "", fmt.Errorf("marshal metadata: %w", err)
	}
	return string(b), nil
}

func metadataWire(m *virt.Metadata) (*metadataXML, error) {
	if m == nil {
		return nil, errors.New("metadata: missing (every legacyvm object carries it)")
	}
	if strings.TrimSpace(m.Profile) == "" {
		return nil, errors.New("metadata: profile is empty")
	}
	w := &metadataXML{
		Profile:     m.Profile,
		VM:          m.VM,
		Instance:    m.Instance,
		Network:     m.Network,
		SpecHash:    m.SpecHash,
		Image:       m.Image,
		ImageBuild:  m.ImageBuild,
		Provisioned: m.Provisioned,
	}
	if m.ImageName != "" {
		w.ImageRef = &imageRefXML{Name: m.ImageName, Version: m.ImageVersion}
	}
	if len(m.Filters) > 0 {
		w.Filters = &filtersXML{Filter: m.Filters}
	}
	fields := []struct{ name, value string }{
		{"profile", m.Profile}, {"vm", m.VM}, {"instance", m.Instance},
		{"network", m.Network}, {"spec hash", m.SpecHash}, {"image", m.Image},
		{"image name", m.ImageName}, {"image build", m.ImageBuild},
	}
	for _, v := range m.Volumes {
		if v.Pool == "" || v.Name == "" {
			return nil, fmt.Errorf("metadata: volume reference %q in pool %q: pool and name are required", v.Name, v.Pool)
		}
		if w.Volumes == nil {
			w.Volumes = &volumesXML{}
		}
		w.Volumes.Volume = append(w.Volumes.Volume, volumeRefXML(v))
		fields = append(fields, struct{ name, value string }{"volume", v.Pool + "/" + v.Name + " " + v.Role})
	}
	for _, f := range m.Filters {
		fields = append(fields, struct{ name, value string }{"filter", f})
	}
	if l := m.License; l != nil {
		if l.Label == "" {
			return nil, errors.New("metadata: licence reference without a label")
		}
		w.License = &licenseRefXML{
			Label: l.Label, Edition: l.Edition, Channel: l.Channel,
			Fingerprint: l.Fingerprint, SecretID: l.SecretID, LastGroup: l.LastGroup, Seats: l.Seats,
		}
		if len(l.LastGroup) > 5 {
			return nil, fmt.Errorf("metadata: licence %q: last group has %d characters, at most 5 may be stored", l.Label, len(l.LastGroup))
		}
		fields = append(fields,
			struct{ name, value string }{"licence label", l.Label},
			struct{ name, value string }{"licence edition", l.Edition},
			struct{ name, value string }{"licence channel", l.Channel},
			struct{ name, value string }{"licence fingerprint", l.Fingerprint},
			struct{ name, value string }{"licence fingerprint secret id", l.SecretID})
	}
	if p := m.Policy; p != nil {
		if p.Name == "" {
			return nil, errors.New("metadata: snapshot policy without a name")
		}
		w.Policy = &policyRefXML{
			Name: p.Name, Baseline: p.Baseline, Schedule: p.Schedule, Keep: p.Keep,
			MaxAge: p.MaxAge, Memory: p.Memory, OnShutdown: p.OnShutdown,
		}
		fields = append(fields,
			struct{ name, value string }{"policy name", p.Name},
			struct{ name, value string }{"policy baseline", p.Baseline},
			struct{ name, value string }{"policy schedule", p.Schedule})
	}
	for _, f := range fields {
		if err := checkNoKey("metadata "+f.name, f.value); err != nil {
			return nil, err
		}
	}
	for _, d := range m.Doors {
		if d.Kind != virt.DoorPublish && d.Kind != virt.DoorEgress || d.Name == "" {
			return nil, fmt.Errorf("metadata: door %q of kind %q: want a named publish or egress door", d.Name, d.Kind)
		}
		if w.Doors == nil {
			w.Doors = &doorsXML{}
		}
		w.Doors.Door = append(w.Doors.Door, doorRefXML{Kind: d.Kind, Name: d.Name, Scope: d.Scope, Listen: d.Listen, Port: d.Port,
			Protocol: d.Protocol, MaxConnections: d.MaxConnections, To: d.To, From: d.From})
		for _, v := range append([]string{d.Name, d.Listen, d.To}, d.From...) {
			if err := checkNoKey("metadata door", v); err != nil {
				return nil, err
			}
		}
	}
	if !m.Created.IsZero() {
		w.Created = m.Created.UTC().Format(time.RFC3339)
	}
	if m.StopRequested != nil {
		w.StopRequest = m.StopRequested.UTC().Format(time.RFC3339)
	}
	return w, nil
}

// ParseMetadata finds legacyvm's element in inner, the inner XML of a
// <metadata> element, and decodes it. Foreign elements (libosinfo, other
// tools) are ignored. It also reads the single element
// virDomainGetMetadata returns, which libvirt strips of its namespace: an
// <owner> element in no namespace counts as legacyvm's (libvirt deletes
// namespace-less children of <metadata>, so none can come from a domain
// document). It returns nil, nil when inner holds no legacyvm element.
func ParseMetadata(inner string) (*virt.Metadata, error) {
	if strings.TrimSpace(inner) == "" {
		return nil, nil
	}
	dec := xml.NewDecoder(strings.NewReader("<metadata>" + inner + "</metadata>"))
	var found *metadataXML
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse metadata: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 2 {
				continue
			}
			// An undeclared prefix (the declaration sat on an outer
			// element) is left in Space by encoding/xml.
			ours := t.Name.Local == MetadataElement &&
				(t.Name.Space == Namespace || t.Name.Space == MetadataPrefix || t.Name.Space == "")
			if !ours {
				if err := dec.Skip(); err != nil {
					return nil, fmt.Errorf("parse metadata: %w", err)
				}
				depth--
				continue
			}
			if found != nil {
				return nil, errors.New("parse metadata: more than one legacyvm element")
			}
			found = &metadataXML{}
			if err := dec.DecodeElement(found, &t); err != nil {
				return nil, fmt.Errorf("parse metadata: %w", err)
			}
			depth--
		case xml.EndElement:
			depth--
		}
	}
	if found == nil {
		return nil, nil
	}
	m := &virt.Metadata{
		Profile:     found.Profile,
		VM:          found.VM,
		Instance:    found.Instance,
		Network:     found.Network,
		SpecHash:    found.SpecHash,
		Image:       found.Image,
		ImageBuild:  found.ImageBuild,
		Provisioned: found.Provisioned,
	}
	if r := found.ImageRef; r != nil {
		m.ImageName, m.ImageVersion = r.Name, r.Version
	}
	if found.Filters != nil {
		m.Filters = found.Filters.Filter
	}
	if found.Volumes != nil {
		for _, v := range found.Volumes.Volume {
			m.Volumes = append(m.Volumes, virt.VolumeRef(v))
		}
	}
	if l := found.License; l != nil {
		m.License = &virt.LicenseRef{
			Label: l.Label, Edition: l.Edition, Channel: l.Channel,
			Fingerprint: l.Fingerprint, SecretID: l.SecretID, LastGroup: l.LastGroup, Seats: l.Seats,
		}
	}
	if p := found.Policy; p != nil {
		m.Policy = &virt.PolicyRef{
			Name: p.Name, Baseline: p.Baseline, Schedule: p.Schedule, Keep: p.Keep,
			MaxAge: p.MaxAge, Memory: p.Memory, OnShutdown: p.OnShutdown,
		}
	}
	if found.Doors != nil {
		for _, d := range found.Doors.Door {
			m.Doors = append(m.Doors, virt.DoorRef{Kind: d.Kind, Name: d.Name, Scope: d.Scope, Listen: d.Listen, Port: d.Port,
				Protocol: d.Protocol, MaxConnections: d.MaxConnections, To: d.To, From: d.From})
		}
	}
	if found.Created != "" {
		t, err := time.Parse(time.RFC3339, found.Created)
		if err != nil {
			return nil, fmt.Errorf("parse metadata: created: %w", err)
		}
		m.Created = t.UTC()
	}
	if found.StopRequest != "" {
		t, err := time.Parse(time.RFC3339, found.StopRequest)
		if err != nil {
			return nil, fmt.Errorf("parse metadata: stop-requested: %w", err)
		}
		t = t.UTC()
		m.StopRequested = &t
	}
	return m, nil
}

// domainMetadataInner is the inner XML of a domain's <metadata>: libosinfo's
// annotation followed by legacyvm's element.
func domainMetadataInner(m *virt.Metadata) (string, error) {
	var osinfo libosinfoXML
	osinfo.OS.ID = libosinfoWin7
	const indent = "    " // the children of <metadata> in a domain document
	osx, err := marshalPrefixed(&osinfo, libosinfoPrefix, libosinfoNamespace, indent)
	if err != nil {
		return "", err
	}
	w, err := metadataWire(m)
	if err != nil {
		return "", err
	}
	ours, err := marshalPrefixed(w, MetadataPrefix, Namespace, indent)
	if err != nil {
		return "", err
	}
	return "\n" + osx + "\n" + ours + "\n  ", nil
}

// marshalPrefixed marshals v with encoding/xml and puts every element in
// namespace ns under prefix (declared on the root element). Attributes stay
// unqualified, as XML namespaces intend. Every line starts with
// linePrefix. encoding/xml cannot write a prefixed namespace by itself;
// this rewrites its token stream.
func marshalPrefixed(v any, prefix, ns, linePrefix string) (string, error) {
	plain, err := xml.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("marshal %s element: %w", prefix, err)
	}
	dec := xml.NewDecoder(bytes.NewReader(plain))
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	enc.Indent(linePrefix, "  ")
	root := true
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("marshal %s element: %w", prefix, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			t.Name = xml.Name{Local: prefix + ":" + t.Name.Local}
			if root {
				t.Attr = append([]xml.Attr{{Name: xml.Name{Local: "xmlns:" + prefix}, Value: ns}}, t.Attr...)
				root = false
			}
			tok = t
		case xml.EndElement:
			t.Name = xml.Name{Local: prefix + ":" + t.Name.Local}
			tok = t
		}
		if err := enc.EncodeToken(xml.CopyToken(tok)); err != nil {
			return "", fmt.Errorf("marshal %s element: %w", prefix, err)
		}
	}
	if err := enc.Flush(); err != nil {
		return "", fmt.Errorf("marshal %s element: %w", prefix, err)
	}
	return out.String(), nil
}
