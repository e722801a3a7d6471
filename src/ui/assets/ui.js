// matchd's web page: keyboard shortcuts (review: a approve, r reject, j next, k previous, 1-9 other bands) and
// drag-and-drop on the try page. Plain script, no build step, nothing fetched from elsewhere (the page's CSP allows
// scripts from this server only).
(() => {
  'use strict';
  let submitting = false;
  document.addEventListener('submit', () => {
    submitting = true; // one decision per key press: a second press while the page changes would only be refused
  });

  document.addEventListener('keydown', (e) => {
    if (submitting || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const target = e.target;
    if (target instanceof Element && target.closest('input, textarea, select, [contenteditable]')) return;
    const el = document.querySelector(`[data-key="${CSS.escape(e.key)}"]`);
    if (!(el instanceof HTMLElement)) return;
    e.preventDefault();
    el.click();
  });

  for (const zone of document.querySelectorAll('[data-drop]')) {
    const input = zone.querySelector('input[type=file]');
    const img = zone.querySelector('img.preview');
    const show = () => {
      const file = input.files && input.files[0];
      if (!file || !img) return;
      if (img.src) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(file);
      img.hidden = false;
    };
    input.addEventListener('change', show);
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      if (e.dataTransfer && e.dataTransfer.files.length) {
        input.files = e.dataTransfer.files;
        show();
      }
    });
  }
})();
