// Compiled, never run: `tsc -p client/test/types` checks that wx-session.d.ts
// describes the API the way the README uses it. Lines marked @ts-expect-error
// must not compile.
import createSession = require('../../wx-session');

type Profile = createSession.Profile;

declare const wx: {
  request(options: object): { abort(): void };
  login(options: object): void;
  checkSession(options: object): void;
  getStorageSync<T = any>(key: string): T;
  setStorageSync<T = any>(key: string, data: T): void;
  removeStorageSync(key: string): void;
  getUserProfile(options: object): void;
  uploadFile(options: object): { abort(): void };
  getAccountInfoSync(): { miniProgram: { appId: string } };
};

const session: createSession.Session = createSession({
  baseURL: 'https://api.example.com',
  wx,
  useBearer: false,
  storageKey: 'wx-session',
  timeout: 10000,
  appId: 'wx0123456789abcdef',
  paths: { info: '/me', profile: '/me/profile', avatar: '/me/avatar', account: '/me' },
});
createSession({ baseURL: 'https://api.example.com' });
// @ts-expect-error baseURL is required
createSession({ wx });
// @ts-expect-error paths are strings
createSession({ baseURL: 'https://api.example.com', paths: { info: 1 } });

interface Order {
  id: number;
}

async function calls(): Promise<void> {
  const call = session.request<Order[]>({
    url: '/orders',
    method: 'GET',
    data: { page: 1 },
    header: { 'X-Trace': '1' },
    timeout: 3000,
    dataType: 'json',
    responseType: 'text',
    enableHttp2: true,
    enableCache: true,
    enableChunked: false,
    aNewerBaseLibraryOption: 1,
  });
  const task: createSession.RequestTask | null = call.task;
  if (task) task.abort();
  call.abort();
  const orders: Order[] = await call;
  orders.map((order) => order.id);

  // The promise from .then() is a plain Promise.
  const later = call.then((list) => list.length);
  // @ts-expect-error no abort on derived promises
  later.abort();

  // @ts-expect-error the client owns the callbacks
  session.request({ url: '/x', success: () => undefined });
  // @ts-expect-error url is required
  session.request({ method: 'GET' });

  const { token, expiresIn }: createSession.LoginResult = await session.login();
  token.length;
  expiresIn.toFixed();

  const user: Profile = await session.launch();
  session.ready((u: Profile) => u.nickName);
  const current: Profile | null = session.user;

  const profile: Profile = await session.bindInfo(
    { encryptedData: 'e', iv: 'i', rawData: 'r', signature: 's' },
    { refresh: (error) => Promise.resolve({ encryptedData: error.error, iv: 'i' }) },
  );
  await session.bindPhone({ code: 'c' });
  await session.bindPhone({ encryptedData: 'e', iv: 'i' }, { refresh: () => ({ encryptedData: 'e', iv: 'i' }) });

  // The profile page.
  const named: Profile = await session.setProfile({ nickName: '小明', gender: 1, city: '' });
  await session.setProfile({ nickName: 'n', gender: '2', anotherInput: 'ignored' });
  // @ts-expect-error gender is 0, 1 or 2
  await session.setProfile({ gender: 3 });
  const upload = session.uploadAvatar('http://tmp/avatar.jpeg', { formData: { a: 'b' }, timeout: 30000 });
  const uploadTask: createSession.UploadTask | null = upload.task;
  if (uploadTask && uploadTask.onProgressUpdate) uploadTask.onProgressUpdate((p) => p.progress.toFixed());
  upload.abort();
  const answer: createSession.AvatarAnswer = await upload;
  const pending: boolean = answer.avatarReview === 'pending' && answer.pendingAvatarUrl !== null;
  // @ts-expect-error the client names the file field
  session.uploadAvatar('http://tmp/a.jpeg', { name: 'avatar' });
  const refreshed: Profile = await session.refresh();
  const deleted: true = (await session.deleteAccount()).deleted;

  const checked: { session: boolean; sessionKeyValid: boolean } = await session.check();
  const ended: number = (await session.logout({ all: true })).ended;
  session.clear();
  void [user, current, profile, checked, ended, named, pending, refreshed, deleted];
}

function errors(err: unknown): string {
  if (err instanceof createSession.ServiceError) {
    const status: number = err.statusCode;
    const code: number | null = err.code;
    const retryAfter: string | undefined = err.header['Retry-After'];
    const body: unknown = err.data;
    const message: string = err.message;
    void [status, code, retryAfter, body, message, err.refreshError];
    if (err.error === 'content_risky' || err.error === 'content_needs_review') {
      const verdict = (err.data as { data: createSession.ContentVerdict }).data;
      return `${verdict.field} ${verdict.label}`;
    }
    return err.error;
  }
  return 'unknown';
}

const made = new createSession.ServiceError(400, { code: 1004, error: 'bad_request', message: 'no' });
const asError: Error = made;
void [calls, errors, asError];
