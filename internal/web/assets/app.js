// legacyvm web console. No inline script (the Content-Security-Policy
// forbids it); every text from the server goes in with textContent.
'use strict';

const $ = (id) => document.getElementById(id);
let csrf = '';
let vms = [];
let activity = {}; // vm -> what an action is doing right now
let rfb = null;
const thumbs = {}; // vm -> object URL of its latest screenshot

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { showLogin(); throw new Error('not logged in'); }
  const ct = r.headers.get('Content-Type') || '';
  const data = ct.startsWith('application/json') ? await r.json() : null;
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

function showLogin() {
  $('login').hidden = false;
  for (const id of ['vms', 'profiles', 'snapshots', 'console', 'events-panel', 'logout']) $(id).hidden = true;
  $('who').textContent = '';
}

function loggedIn(me) {
  csrf = me.csrf_token || '';
  $('who').textContent = `${me.name || me.id} (${me.role}${me.profiles.length ? ': ' + me.profiles.join(', ') : ''})`;
  $('login').hidden = true;
  $('vms').hidden = false;
  $('events-panel').hidden = false;
  $('logout').hidden = false;
  document.body.dataset.role = me.role;
  refresh();
  listen();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('login-error').textContent = '';
  try {
    const r = await fetch('/api/v1/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: $('token').value.trim() }), credentials: 'same-origin',
    });
    const data = await r.json();
    $('token').value = '';
    if (!r.ok) { $('login-error').textContent = data.error; return; }
    loggedIn(data);
  } catch (e) { $('login-error').textContent = String(e); }
});

$('logout').addEventListener('click', async () => {
  try { await api('POST', '/api/v1/logout'); } catch (e) { /* logged out anyway */ }
  location.reload();
});

function ago(secs) {
  if (secs === null || secs === undefined) return 'not since the console started';
  if (secs < 90) return `${Math.round(secs)} s ago`;
  if (secs < 5400) return `${Math.round(secs / 60)} min ago`;
  return `${Math.round(secs / 3600)} h ago`;
}

function bytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function button(label, cls, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.className = cls;
  b.addEventListener('click', onclick);
  return b;
}

function render() {
  const tbody = $('vm-rows');
  const tester = document.body.dataset.role !== 'viewer';
  tbody.replaceChildren();
  for (const vm of vms) {
    const tr = document.createElement('tr');
    tr.dataset.vm = vm.vm;
    const cell = (text, cls) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
      return td;
    };
    const shot = document.createElement('td');
    const img = document.createElement('img');
    img.className = 'thumb';
    img.alt = `screen of ${vm.vm}`;
    if (thumbs[vm.vm]) img.src = thumbs[vm.vm];
    shot.appendChild(img);
    tr.appendChild(shot);
    cell(vm.vm, 'name');
    cell(vm.profile);
    const busy = activity[vm.vm];
    const st = cell(busy ? `${vm.state} (${busy})` : vm.state, busy ? 'state busy' : `state state-${vm.state}`);
    st.dataset.state = vm.state;
    if (busy) st.dataset.activity = busy;
    cell(vm.address || '');
    cell(vm.license || '');
    cell(String(vm.snapshots));
    cell(ago(vm.seconds_since_reset));
    cell(bytes(vm.bytes_written));
    const actions = document.createElement('td');
    if (tester) {
      actions.appendChild(button('Reset', 'reset', () => confirmThen(`Reset ${vm.vm} to its baseline${vm.baseline ? ' (' + vm.baseline + ')' : ''}? Everything since is lost.`,
        () => act(vm.vm, 'reset'))));
      if (vm.state === 'running') {
        actions.appendChild(button('Stop', 'stop', () => confirmThen(`Shut ${vm.vm} down?`, () => act(vm.vm, 'stop'))));
        actions.appendChild(button('Console', 'console', () => openConsole(vm.vm)));
      } else {
        actions.appendChild(button('Start', 'start', () => act(vm.vm, 'start')));
      }
    }
    actions.appendChild(button('Snapshots', 'snapshots', () => showSnapshots(vm.vm)));
    tr.appendChild(actions);
    tbody.appendChild(tr);
  }
}

async function refresh() {
  try {
    const data = await api('GET', '/api/v1/vms');
    vms = data.vms;
    $('vms-error').textContent = '';
    render();
    refreshProfiles();
  } catch (e) { $('vms-error').textContent = String(e.message || e); }
}

// The served profiles: Plan for everyone, Apply and Destroy (after a
// confirmation) for admins.
async function refreshProfiles() {
  const data = await api('GET', '/api/v1/profiles');
  const served = data.profiles.filter((p) => p.served);
  $('profiles').hidden = served.length === 0;
  const list = $('profile-list');
  list.replaceChildren();
  const admin = document.body.dataset.role === 'admin';
  for (const p of served) {
    const li = document.createElement('li');
    li.dataset.profile = p.profile;
    li.textContent = `${p.profile} (${p.vms.length} VM${p.vms.length === 1 ? '' : 's'}) `;
    li.appendChild(button('Plan', 'plan', () => profileAct(p.profile, 'plan')));
    if (admin) {
      li.appendChild(button('Apply', 'apply', () => confirmThen(
        `Apply profile ${p.profile}? Its VMs are created or changed as planned; changes that delete disks or snapshots are carried out too.`,
        () => profileAct(p.profile, 'apply'))));
      li.appendChild(button('Destroy', 'destroy', () => confirmThen(
        `Destroy profile ${p.profile}? Its VMs, their disks and snapshots, and its networks are deleted.`,
        () => profileAct(p.profile, 'destroy'))));
    }
    list.appendChild(li);
  }
}

async function profileAct(profile, what) {
  $('profile-result').textContent = `${what} ${profile}\u2026`;
  try {
    let a = await api('POST', `/api/v1/profiles/${encodeURIComponent(profile)}/${what}`);
    // Its events show in the events panel meanwhile.
    while (a.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      a = await api('GET', `/api/v1/actions/${encodeURIComponent(a.id)}`);
    }
    const lines = [`${a.action} ${a.profile}: ${a.status}${a.error ? ' \u2014 ' + a.error : ''}`];
    for (const hp of a.result || []) {
      lines.push(`  host ${hp.host || hp.uri}${hp.error ? ': ' + hp.error : ''}`);
      if (!hp.changes.length) lines.push('    no changes');
      for (const c of hp.changes) lines.push(`    ${c.action} ${c.kind} ${c.name}${c.destructive ? ' (deletes data)' : ''}`);
    }
    $('profile-result').textContent = lines.join('\n');
  } catch (e) { $('profile-result').textContent = String(e.message || e); }
  refresh();
}

async function refreshThumbs() {
  for (const vm of vms) {
    if (vm.state !== 'running') continue;
    try {
      const r = await fetch(`/api/v1/vms/${encodeURIComponent(vm.vm)}/screenshot`, { credentials: 'same-origin' });
      if (!r.ok) continue;
      const url = URL.createObjectURL(await r.blob());
      if (thumbs[vm.vm]) URL.revokeObjectURL(thumbs[vm.vm]);
      thumbs[vm.vm] = url;
      const img = document.querySelector(`tr[data-vm="${CSS.escape(vm.vm)}"] img.thumb`);
      if (img) img.src = url;
    } catch (e) { /* next round */ }
  }
}

function confirmThen(text, fn) {
  const d = $('confirm');
  $('confirm-text').textContent = text;
  d.returnValue = '';
  d.addEventListener('close', () => { if (d.returnValue === 'ok') fn(); }, { once: true });
  d.showModal();
}

async function act(vm, what, body) {
  try {
    await api('POST', `/api/v1/vms/${encodeURIComponent(vm)}/${what}`, body);
  } catch (e) { $('vms-error').textContent = `${what} ${vm}: ${e.message || e}`; }
}

async function showSnapshots(vm) {
  $('snapshots').hidden = false;
  $('snap-vm').textContent = vm;
  $('snapshots').dataset.vm = vm;
  const list = $('snap-list');
  list.replaceChildren();
  try {
    const data = await api('GET', `/api/v1/vms/${encodeURIComponent(vm)}/snapshots`);
    const depth = {};
    for (const s of data.snapshots) {
      depth[s.name] = s.parent && depth[s.parent] !== undefined ? depth[s.parent] + 1 : 0;
      const li = document.createElement('li');
      li.dataset.snapshot = s.name;
      li.textContent = `${'\u2003'.repeat(depth[s.name])}${s.name} (${s.kind}, ${s.state}, ${new Date(s.created).toLocaleString()})${s.current ? ' \u2190 current' : ''} `;
      if (document.body.dataset.role !== 'viewer') {
        li.appendChild(button('Revert', 'revert', () => confirmThen(`Revert ${vm} to ${s.name}?`, () => act(vm, 'revert', { snapshot: s.name }))));
      }
      list.appendChild(li);
    }
  } catch (e) { list.textContent = String(e.message || e); }
}

$('snap-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const vm = $('snapshots').dataset.vm;
  act(vm, 'snapshots', { name: $('snap-name').value });
  $('snap-name').value = '';
});
$('snap-close').addEventListener('click', () => { $('snapshots').hidden = true; });

function listen() {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('engine', (msg) => {
    const se = JSON.parse(msg.data);
    const e = se.event;
    const li = document.createElement('li');
    li.textContent = `${new Date(e.time).toLocaleTimeString()} ${e.object} ${e.step} ${e.phase}${e.message ? ': ' + e.message : ''}${e.error ? ' \u2014 ' + e.error : ''}`;
    li.dataset.vm = e.object;
    li.dataset.phase = e.phase;
    $('events').prepend(li);
    while ($('events').children.length > 200) $('events').lastChild.remove();
    if (e.kind !== 'vm') return;
    if (!se.action && e.phase === 'note') { refresh(); return; } // the host's lifecycle event
    if (e.phase === 'begin' && e.step !== 'wait') activity[e.object] = e.message || e.step;
    if (e.step === 'operation' && (e.phase === 'done' || e.phase === 'failed' || e.phase === 'note')) {
      delete activity[e.object];
      refresh();
      if (!$('snapshots').hidden && $('snapshots').dataset.vm === e.object) showSnapshots(e.object);
      return;
    }
    render();
  });
}

async function openConsole(vm) {
  closeConsole();
  $('console').hidden = false;
  $('console-vm').textContent = vm;
  $('console-status').textContent = 'connecting\u2026';
  let RFB;
  try {
    RFB = (await import('./novnc/core/rfb.js')).default;
  } catch (e) {
    $('console-status').textContent = 'the console assets were not built into this binary (make web)';
    return;
  }
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  rfb = new RFB($('screen'), `${proto}://${location.host}/api/v1/vms/${encodeURIComponent(vm)}/console`, { wsProtocols: ['binary'] });
  rfb.scaleViewport = true;
  rfb.addEventListener('connect', () => { $('console-status').textContent = 'connected'; $('console').dataset.connected = 'yes'; });
  rfb.addEventListener('disconnect', () => { $('console-status').textContent = 'disconnected'; $('console').dataset.connected = ''; });
}

function closeConsole() {
  if (rfb) { rfb.disconnect(); rfb = null; }
  $('console').hidden = true;
  $('console').dataset.connected = '';
}
$('console-close').addEventListener('click', closeConsole);

(async () => {
  try {
    const r = await fetch('/api/v1/whoami', { credentials: 'same-origin' });
    if (r.ok) loggedIn(await r.json()); else showLogin();
  } catch (e) { showLogin(); }
  setInterval(refresh, 5000);
  setInterval(refreshThumbs, 3000);
  setTimeout(refreshThumbs, 500);
})();
