// Avatars (docs/protocol.md "Avatars"), the pure part: which image URL a user object
// gives at a drawn size, the image types offered, and setting an avatar from an upload
// (asked again while the server still makes the upload's preview: `conflict`).
export const AVATAR_TYPES = 'image/png,image/jpeg,image/gif,image/webp';

// 'lg': the 256 px rendition, else the 64 px one; null: the initials. The URLs need no
// token and are immutable, so the browser caches them; only our own path is used.
export function avatarSrc(user, size = 'md') {
  const a = user && user.avatar;
  if (!a || typeof a.url !== 'string') return null;
  const src = size === 'lg' ? a.url : (typeof a.small_url === 'string' ? a.small_url : a.url);
  return src.startsWith('/api/v1/users/') ? src : null;
}

export async function setAvatarFrom(api, fileId, { tries = 40, wait = (ms) => new Promise((r) => setTimeout(r, ms)) } = {}) {
  for (let i = 0; ; i += 1) {
    try {
      return await api.put('/users/me/avatar', { file_id: fileId });
    } catch (err) {
      if (!err || err.code !== 'conflict' || i + 1 >= tries) throw err;
      await wait(Math.min(250 * 2 ** i, 2000));
    }
  }
}
