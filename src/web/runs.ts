/**
 * Runs view: every run, grouped by loss with mean ± 95% CI over its seeds, sortable by any
 * column, the best value of each numeric column marked (per run and per group), a config diff
 * of two ticked runs, and each run's or folder's problems as messages.
 */
import { clear, h, message } from './dom.ts';
import { AT_BEST, AT_BEST_TIP, type Column, COLUMNS, statText } from './runColumns.ts';
import { groups, meanCi, type RunInfo, state } from './state.ts';

let sortKey = 'label';
let sortAsc = true;
const ticked = new Set<string>();

function best(values: (number | null)[], better: 'max' | 'min'): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  // one value, or all equal, is not "best" of anything
  if (v.length < 2 || v.every((x) => x === v[0])) return null;
  return better === 'max' ? Math.max(...v) : Math.min(...v);
}

export function renderRuns(root: HTMLElement): void {
  clear(root);
  for (const f of state.folders) if (f.message) root.append(message(`${f.path}: ${f.message}`));
  if (state.runs.length === 0) {
    root.append(message(`no runs found yet in ${state.roots.join(', ') || 'the served folders'}: waiting for a compare or train to write one`));
    return;
  }
  const gs = groups(state.runs);
  const col = COLUMNS.find((c) => c.key === sortKey) ?? COLUMNS[0]!;
  const dir = sortAsc ? 1 : -1;
  const cmpRuns = (a: RunInfo, b: RunInfo): number => {
    if (col.value) {
      const x = col.value(a) ?? -Infinity;
      const y = col.value(b) ?? -Infinity;
      return dir * (x - y);
    }
    return dir * col.text!(a).localeCompare(col.text!(b), undefined, { numeric: true });
  };
  const groupStats = new Map(gs.map((g) => [g.key, new Map(COLUMNS.filter((c) => c.value).map((c) => [c.key, meanCi(g.runs.map(c.value!))]))]));
  gs.sort((a, b) => {
    if (col.value && col.key !== 'seed') {
      const x = groupStats.get(a.key)!.get(col.key)!.mean;
      const y = groupStats.get(b.key)!.get(col.key)!.mean;
      return dir * ((Number.isFinite(x) ? x : -Infinity) - (Number.isFinite(y) ? y : -Infinity));
    }
    return (col.key === 'label' ? dir : 1) * a.label.localeCompare(b.label);
  });
  for (const g of gs) g.runs.sort(cmpRuns);

  // best of a column, per accuracy convention where the column has one (a group is one loss: one convention)
  const conv = (c: Column, r: RunInfo): string => (c.byConvention ? r.pairAccuracyAt : '');
  const bestRun = new Map<string, number | null>();
  const bestGroup = new Map<string, number | null>();
  for (const c of COLUMNS) {
    if (!c.better) continue;
    for (const k of new Set(state.runs.map((r) => conv(c, r)))) {
      bestRun.set(`${c.key}|${k}`, best(state.runs.filter((r) => conv(c, r) === k).map(c.value!), c.better));
      bestGroup.set(`${c.key}|${k}`, best(gs.filter((g) => conv(c, g.runs[0]!) === k).map((g) => groupStats.get(g.key)!.get(c.key)!.mean), c.better));
    }
  }
  const marked = (c: Column, r: RunInfo): { mark: string; title?: string } => (c.byConvention && r.pairAccuracyAt === 'best' ? { mark: AT_BEST, title: AT_BEST_TIP } : { mark: '' });

  const head = h('tr', {}, h('th', { title: 'tick two runs to compare their configs' }, ''));
  for (const c of COLUMNS) {
    const th = h('th', { title: c.key === 'testAccuracy' || c.key === 'lastLoss' ? 'at the last logged epoch' : undefined, class: `${c.value ? 'num' : ''} ${c.key === sortKey ? `sorted ${sortAsc ? 'asc' : ''}` : ''}`, 'data-key': c.key }, c.title);
    th.addEventListener('click', () => {
      if (sortKey === c.key) sortAsc = !sortAsc;
      else {
        sortKey = c.key;
        sortAsc = !c.better || c.better === 'min';
      }
      renderRuns(root);
    });
    head.append(th);
  }
  head.append(h('th', {}, 'notes'));
  const body = h('tbody');
  for (const g of gs) {
    const gr = h('tr', { class: 'group', 'data-group': g.key }, h('td'));
    for (const c of COLUMNS) {
      if (c.key === 'label') gr.append(h('td', {}, g.label));
      else if (c.key === 'seed') {
        const unit = g.runs[0]!.sweep?.kind === 'trial' ? 'fold' : 'seed';
        gr.append(h('td', { class: 'num' }, `${g.runs.length} ${unit}${g.runs.length === 1 ? '' : 's'}`));
      }
      else if (c.value && c.show) {
        const s = groupStats.get(g.key)!.get(c.key)!;
        const isBest = c.better && s.n > 0 && s.mean === bestGroup.get(`${c.key}|${conv(c, g.runs[0]!)}`);
        const m = marked(c, g.runs[0]!);
        gr.append(
          h('td', { class: `num${isBest ? ' best' : ''}`, title: m.title, 'data-col': c.key, 'data-mean': Number.isFinite(s.mean) ? s.mean : undefined, 'data-ci': Number.isFinite(s.ci) ? s.ci : undefined }, s.n > 0 ? statText(c, s) + m.mark : '–'),
        );
      } else gr.append(h('td'));
    }
    gr.append(h('td'));
    body.append(gr);
    for (const r of g.runs) {
      const box = h('input', { type: 'checkbox', 'aria-label': `select ${r.label} seed ${r.seed ?? '?'}` });
      box.checked = ticked.has(r.id);
      box.addEventListener('change', () => {
        if (box.checked) ticked.add(r.id);
        else ticked.delete(r.id);
        renderRuns(root);
      });
      const tr = h('tr', { class: 'run', 'data-run': r.id }, h('td', {}, box));
      for (const c of COLUMNS) {
        if (c.value && c.show) {
          const v = c.value(r);
          const isBest = c.better && v !== null && v === bestRun.get(`${c.key}|${conv(c, r)}`);
          const m = v === null ? { mark: '' } : marked(c, r);
          tr.append(h('td', { class: `num${isBest ? ' best' : ''}`, title: m.title, 'data-col': c.key, 'data-value': v ?? undefined }, c.show(v) + m.mark));
        } else {
          tr.append(h('td', { 'data-col': c.key, class: c.key === 'status' ? `status-${r.status}` : undefined, title: c.key === 'label' ? r.path : undefined }, c.text!(r)));
        }
      }
      tr.append(h('td', {}, r.messages.length > 0 ? h('span', { class: 'warn', title: r.messages.join('\n') }, `⚠ ${r.messages[0]}`) : ''));
      body.append(tr);
    }
  }
  root.append(h('div', { class: 'scroll' }, h('table', { class: 'runs' }, h('thead', {}, head), body)));
  root.append(h('p', { class: 'note' }, 'Group rows: mean ± 95% confidence interval (t distribution) over seeds, or over the folds of a sweep trial (its MAP@R: the validation score); a percentage\'s interval that would pass 0 or 100 is shown clipped to it, as (low to high). ★ best run and best group mean of each column. Click a header to sort.' +
    (state.runs.some((r) => r.pairAccuracyAt === 'best')
      ? ' ᵇ pair and test accuracy at the best threshold (in-sample): the batch losses have no absolute distance scale; ★ marks the best among the runs of one convention, and sorting by these columns sets the two side by side.'
      : '')));
  renderDiff(root);
}

function renderDiff(root: HTMLElement): void {
  for (const id of [...ticked]) if (!state.runs.some((r) => r.id === id)) ticked.delete(id);
  if (ticked.size !== 2) {
    root.append(h('p', { class: 'note' }, 'Tick two runs to see how their configurations differ.'));
    return;
  }
  const [a, b] = [...ticked].map((id) => state.runs.find((r) => r.id === id)!) as [RunInfo, RunInfo];
  const flat = (r: RunInfo): Map<string, string> => {
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(r.config ?? {})) m.set(k, JSON.stringify(v));
    for (const [k, v] of Object.entries(r.params)) m.set(`loss.${k}`, JSON.stringify(v));
    return m;
  };
  const fa = flat(a);
  const fb = flat(b);
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort().filter((k) => fa.get(k) !== fb.get(k));
  const t = h('table', {}, h('tr', {}, h('th', {}, 'setting'), h('th', {}, `${a.label} seed ${a.seed ?? '?'}`), h('th', {}, `${b.label} seed ${b.seed ?? '?'}`)));
  for (const k of keys) t.append(h('tr', {}, h('td', {}, k), h('td', {}, fa.get(k) ?? '–'), h('td', {}, fb.get(k) ?? '–')));
  root.append(h('div', { class: 'diff', 'data-testid': 'diff' }, h('h2', {}, 'Config diff'), keys.length === 0 ? h('p', {}, 'the two configurations are identical') : t));
}
