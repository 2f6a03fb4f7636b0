// The object tree (roots, then children on demand) with each object's state, and
// one object's fields, ancestors, records and events, and actions.

import { get, query } from './api.js';
import { h, clear, timeCell, levelBadge, stateBadge, jsonTree, localTime, utcTime } from './dom.js';

const PAGE = 100;
const RECORDS = 50;

const keyOf = (o) => `${o.type}/${o.id}`;
const objectPath = (type, id) => `/logbook/v1/objects/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;

export class ObjectsPage {
  constructor(root, session) {
    this.root = root;
    this.session = session;
    this.build();
    this.loadLevel(this.tree, { root: true });
    this.restore();
  }

  restore() {
    const p = new URLSearchParams(location.search);
    const key = p.get('object');
    const uri = p.get('uri');
    if (key && key.includes('/')) {
      const slash = key.indexOf('/');
      this.open(key.slice(0, slash), key.slice(slash + 1), false);
    } else if (uri) {
      this.openUri(uri);
    } else {
      this.closeDetail(false);
    }
  }

  build() {
    this.tree = h('ul', { class: 'tree', role: 'tree', 'aria-label': 'Objects' });
    this.detail = h('aside', { class: 'panel object-panel', hidden: true, 'aria-label': 'Object' });
    this.summary = h('div', { class: 'summary', role: 'status' });
    clear(this.root,
      h('section', { class: 'search-bar' }, h('div', { class: 'filter-row' }, h('h1', { class: 'page-title', text: 'Objects' }), this.summary)),
      h('div', { class: 'workspace' }, h('div', { class: 'results-scroll tree-scroll' }, this.tree), this.detail));
  }

  /** One level of the tree into `list`: the roots, or one object's children. */
  async loadLevel(list, params, offset = 0) {
    try {
      const page = await get(`/logbook/v1/objects${query({ ...params, limit: PAGE, offset })}`);
      if (params.root) this.summary.textContent = `${page.total} top-level ${page.total === 1 ? 'object' : 'objects'}`;
      if (offset === 0) clear(list);
      const more = list.querySelector(':scope > li.more-item');
      if (more) more.remove();
      list.append(...page.objects.map((o) => this.node(o)));
      if (!page.objects.length && offset === 0) list.append(h('li', { class: 'muted empty', role: 'none', text: params.root ? 'No objects.' : 'No children.' }));
      if (offset + page.objects.length < page.total) {
        list.append(h('li', { class: 'more-item', role: 'none' }, h('button', {
          type: 'button',
          class: 'link',
          text: `${page.total - offset - page.objects.length} more…`,
          onclick: () => this.loadLevel(list, params, offset + PAGE),
        })));
      }
    } catch (e) {
      clear(list, h('li', { class: 'error', role: 'alert', text: e.message }));
    }
  }

  node(object) {
    const children = h('ul', { role: 'group', hidden: true });
    const toggle = h('button', {
      type: 'button',
      class: 'expander',
      'aria-expanded': 'false',
      'aria-label': `Children of ${keyOf(object)}`,
      text: '▸',
      onclick: () => {
        const open = toggle.getAttribute('aria-expanded') !== 'true';
        toggle.setAttribute('aria-expanded', String(open));
        toggle.textContent = open ? '▾' : '▸';
        children.hidden = !open;
        if (open && !children.dataset.loaded) {
          children.dataset.loaded = '1';
          this.loadLevel(children, { parent_type: object.type, parent_id: object.id });
        }
      },
    });
    const label = h('button', {
      type: 'button',
      class: 'node-label',
      onclick: () => this.open(object.type, object.id, true),
    }, h('span', { class: 'object-type', text: object.type }), ' ', h('span', { class: 'object-name', text: object.name || object.id }), ' ', stateBadge(object.state));
    return h('li', { role: 'treeitem', 'data-key': keyOf(object), 'aria-expanded': 'false' }, toggle, label, children);
  }

  async openUri(uri) {
    // An action names its object by URI.
    try {
      const page = await get(`/logbook/v1/objects${query({ uri })}`);
      if (page.objects.length) this.open(page.objects[0].type, page.objects[0].id, false);
      else this.showMissing(`No registered object has the URI ${uri}.`);
    } catch (e) {
      this.showMissing(e.message);
    }
  }

  showMissing(text) {
    this.detail.hidden = false;
    clear(this.detail, this.header('Object'), h('p', { class: 'error', role: 'alert', text }));
  }

  async open(type, id, push) {
    if (push) history.pushState(null, '', `/objects?object=${encodeURIComponent(`${type}/${id}`)}`);
    this.current = `${type}/${id}`;
    for (const el of this.tree.querySelectorAll('.node-label.selected')) el.classList.remove('selected');
    const li = this.tree.querySelector(`li[data-key="${CSS.escape(this.current)}"] > .node-label`);
    if (li) li.classList.add('selected');
    this.detail.hidden = false;
    document.body.classList.add('panel-open');
    clear(this.detail, this.header(`${type}/${id}`), h('p', { class: 'muted', text: 'Loading…' }));
    let object;
    try {
      object = await get(objectPath(type, id));
    } catch (e) {
      if (this.current === `${type}/${id}`) this.showMissing(e.status === 404 ? 'No such object (or not yours to see).' : e.message);
      return;
    }
    if (this.current !== `${type}/${id}`) return;
    this.render(object);
  }

  closeDetail(push = true) {
    this.detail.hidden = true;
    this.current = null;
    document.body.classList.remove('panel-open');
    if (push) history.pushState(null, '', '/objects');
  }

  header(title) {
    return h('header', { class: 'panel-head' },
      h('h2', { text: title }),
      h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', title: 'Close (Esc)', text: '×', onclick: () => this.closeDetail() }));
  }

  async render(object) {
    const ancestors = h('nav', { class: 'breadcrumb', 'aria-label': 'Ancestors' });
    const records = h('ol', { class: 'results compact', 'aria-label': 'Records and events' });
    const actions = h('ul', { class: 'plain', 'aria-label': 'Actions on it' });
    const search = `/?object_type=${encodeURIComponent(object.type)}&object_id=${encodeURIComponent(object.id)}&range=all`;
    clear(this.detail,
      this.header(`${object.type}/${object.id}`),
      h('div', { class: 'panel-body' },
        ancestors,
        h('dl', { class: 'facts' },
          h('dt', { text: 'name' }), h('dd', { text: object.name || '—' }),
          h('dt', { text: 'state' }), h('dd', {}, stateBadge(object.state)),
          h('dt', { text: 'uri' }), h('dd', { class: 'mono', text: object.uri || '—' }),
          h('dt', { text: 'domain' }), h('dd', { text: object.domain_id || '—' }),
          h('dt', { text: 'updated' }), h('dd', { title: utcTime(object.updated), text: localTime(object.updated) })),
        Object.keys(object.attributes || {}).length ? h('section', {}, h('h3', { text: 'attributes' }), h('div', { class: 'json' }, jsonTree(object.attributes, 2))) : null,
        h('section', {}, h('h3', {}, 'Records and events ', h('a', { href: search, 'data-nav': '', class: 'small-link', text: 'search them' })), records),
        object.uri ? h('section', {}, h('h3', { text: 'Actions' }), actions) : null));
    this.ancestors(object, ancestors);
    try {
      const page = await get(`/logbook/v1/records${query({ object_type: object.type, object_id: object.id, limit: RECORDS })}`);
      clear(records, page.records.length ? page.records.map((r) => h('li', { class: 'row', 'data-id': r.id },
        timeCell(r.ts), levelBadge(r.level), h('span', { class: 'cell category', text: r.kind }),
        h('a', { class: 'cell message', href: `/?record=${r.id}&object_type=${encodeURIComponent(object.type)}&object_id=${encodeURIComponent(object.id)}&range=all`, 'data-nav': '', text: r.message || '' }))) : h('li', { class: 'muted', text: 'None.' }));
    } catch (e) {
      clear(records, h('li', { class: 'error', text: e.message }));
    }
    if (object.uri) {
      try {
        const page = await get(`/logbook/v1/actions${query({ object: object.uri, limit: 100 })}`);
        clear(actions, page.actions.length ? page.actions.slice().reverse().map((a) => h('li', {},
          stateBadge(a.state), ' ', h('a', { href: `/actions?action=${encodeURIComponent(a.uuid)}`, 'data-nav': '', text: a.action }), ' ', timeCell(a.start_date))) : h('li', { class: 'muted', text: 'None.' }));
      } catch (e) {
        clear(actions, h('li', { class: 'error', text: e.message }));
      }
    }
  }

  /** Walks the parent links up (bounded, in case a client wrote a cycle). */
  async ancestors(object, el) {
    const chain = [];
    let parent = object.parent;
    while (parent && chain.length < 16) {
      try {
        const up = await get(objectPath(parent.type, parent.id));
        chain.unshift(up);
        parent = up.parent;
      } catch {
        chain.unshift({ type: parent.type, id: parent.id, missing: true });
        break;
      }
    }
    clear(el, chain.map((o) => [
      h('a', { href: `/objects?object=${encodeURIComponent(keyOf(o))}`, 'data-nav': '', text: `${o.type}/${o.name || o.id}` }), ' › ',
    ]), h('strong', { text: `${object.type}/${object.name || object.id}` }));
  }

  onKey(event) {
    if (event.key === 'Escape' && !this.detail.hidden) {
      this.closeDetail();
      return true;
    }
    return false;
  }
}
