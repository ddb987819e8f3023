// Asset figures: thumbnails, inline players and downloads, their bytes fetched with the token.
//
// Why blob: URLs. <img>, <video> and <audio> cannot send an Authorization header, and the asset
// route answers the whole file (no Range), so each visible asset is fetched once with the token
// into a Blob and shown through URL.createObjectURL: the element can then seek freely in memory.
// The page hashes the same bytes (crypto.subtle) and marks the figure with whether they match the
// sha256 the API stored. Files over AUTOLOAD_MAX are not fetched until the person asks.

import { Unauthorized, fetchAsset, sha256Hex } from './api.js';
import { bytes, h } from './dom.js';

export const AUTOLOAD_MAX = 64 * 1024 * 1024;

export function mediaKind(asset) {
  const ct = asset.content_type || '';
  for (const k of ['image', 'video', 'audio']) if (asset.kind === k || ct.startsWith(`${k}/`)) return k;
  return 'file';
}

function extension(asset) {
  const ct = asset.content_type || '';
  const sub = ct.split('/')[1] || 'bin';
  return sub.replace(/[^a-z0-9]/gi, '').slice(0, 8) || 'bin';
}

export class Media {
  constructor({ onUnauthorized }) {
    this.onUnauthorized = onUnauthorized;
    this.urls = new Map(); // figure -> blob: URL, revoked when the figure goes away
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        this.observer.unobserve(e.target);
        this.load(e.target);
      }
    }, { rootMargin: '400px' });
  }

  figure(jobId, asset) {
    const kind = mediaKind(asset);
    const label = `${kind} ${asset.index} of ${jobId}`;
    const fig = h('figure', {
      class: `asset asset-${kind}`,
      dataset: { jobId, index: String(asset.index), attempt: String(asset.attempt ?? 1), kind, sha256: asset.sha256 || '', verified: 'pending' },
    });
    if (!asset.url) {
      fig.dataset.verified = 'none';
      fig.append(h('p', { class: 'muted small' }, `${kind} not stored`));
      return fig;
    }
    let el;
    if (kind === 'image') el = h('img', { alt: label, decoding: 'async' });
    else if (kind === 'video') el = h('video', { controls: true, muted: true, playsinline: true, loop: true, preload: 'metadata', 'aria-label': label });
    else if (kind === 'audio') el = h('audio', { controls: true, preload: 'metadata', 'aria-label': label });
    if (kind === 'video') el.muted = true;
    const badge = h('span', { class: 'verify' }, '…');
    const caption = h('figcaption', {}, badge, ` ${bytes(asset.size)}`);
    if (el) fig.append(el);
    if (!el || (asset.size ?? 0) > AUTOLOAD_MAX) {
      fig.append(h('button', {
        type: 'button', class: 'small',
        onclick: (ev) => { ev.stopPropagation(); this.load(fig, { download: !el, name: `${jobId}-${asset.index}.${extension(asset)}` }); },
      }, el ? `Load ${bytes(asset.size)}` : `Download ${bytes(asset.size)}`));
      badge.textContent = '';
    } else {
      this.observer.observe(fig);
    }
    fig.append(caption);
    return fig;
  }

  async load(fig, { download = false, name = 'asset' } = {}) {
    if (fig.dataset.state === 'loading' || (fig.dataset.state === 'loaded' && !download)) return;
    fig.dataset.state = 'loading';
    const badge = fig.querySelector('.verify');
    badge.textContent = 'loading…';
    try {
      const blob = await fetchAsset(fig.dataset.jobId, fig.dataset.index, fig.dataset.attempt);
      if (!fig.isConnected) return;
      const url = URL.createObjectURL(blob);
      this.revoke(fig);
      this.urls.set(fig, url);
      const el = fig.querySelector('img, video, audio');
      if (el) el.src = url;
      if (download) h('a', { href: url, download: name }).click();
      fig.dataset.state = 'loaded';
      await this.verify(fig, blob, badge);
    } catch (err) {
      fig.dataset.state = 'error';
      badge.textContent = `not loaded: ${err.message}`;
      if (err instanceof Unauthorized) this.onUnauthorized();
    }
  }

  async verify(fig, blob, badge) {
    const want = fig.dataset.sha256;
    if (!want) { badge.textContent = 'no sha256'; fig.dataset.verified = 'none'; return; }
    const got = await sha256Hex(blob);
    fig.dataset.actualSha256 = got;
    const ok = got === want;
    fig.dataset.verified = ok ? 'yes' : 'no';
    badge.textContent = ok ? '✓ sha256' : '✗ sha256 mismatch';
    badge.title = ok ? `bytes match the stored sha256 ${want}` : `stored ${want}, got ${got}`;
  }

  // Detach the element from its blob: URL before revoking it, so that a <video> still reading it
  // (or an <img> still decoding) stops instead of failing on a URL that is gone.
  revoke(fig) {
    const url = this.urls.get(fig);
    if (!url) return;
    const el = fig.querySelector('img, video, audio');
    if (el && el.getAttribute('src') === url) {
      el.removeAttribute('src');
      if (el.tagName !== 'IMG') { el.pause(); el.load(); }
    }
    URL.revokeObjectURL(url);
    this.urls.delete(fig);
  }

  // Forget every figure (the list is being emptied).
  releaseAll() {
    this.observer.disconnect();
    for (const fig of [...this.urls.keys()]) this.revoke(fig);
  }

  // Forget every figure under root (a card that was removed or re-rendered its assets).
  release(root) {
    for (const fig of root.querySelectorAll('figure.asset')) {
      this.observer.unobserve(fig);
      this.revoke(fig);
    }
  }
}
