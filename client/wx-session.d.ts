// TypeScript declarations for wx-session.js (CommonJS: `import createSession = require('./wx-session')`,
// or `import createSession from './wx-session'` with esModuleInterop).
// They need nothing else; the wx you pass may be the one typed by miniprogram-api-typings.

/** Creates the session of this mini program with the service. */
declare function createSession(options: createSession.SessionOptions): createSession.Session;

declare namespace createSession {
  /** The service's paths; each one overridable. */
  interface Paths {
    /** Default '/oauth/login'. */
    login: string;
    /** Default '/oauth/logout'. */
    logout: string;
    /** Default '/user/info'. */
    info: string;
    /** Default '/user/bindinfo'. */
    bindInfo: string;
    /** Default '/user/bindphone'. */
    bindPhone: string;
    /** Default '/oauth/check'. */
    check: string;
    /** Default '/user/profile' (PUT, setProfile). */
    profile: string;
    /** Default '/user/avatar' (wx.uploadFile, uploadAvatar). */
    avatar: string;
    /** Default '/user' (DELETE, deleteAccount). */
    account: string;
  }

  /** The part of `wx` the client uses. */
  interface WxApi {
    request(options: any): any;
    login(options: any): any;
    /** For uploadAvatar. */
    uploadFile?(options: any): any;
    /** Base library 2.2.2+: gives the mini program's appid, sent as X-WX-AppId. */
    getAccountInfoSync?(): any;
    getStorageSync(key: string): any;
    setStorageSync(key: string, data: any): any;
    /** Without it (very old base libraries), forgetting a key stores ''. */
    removeStorageSync?(key: string): any;
    /** Without it, launch() takes a stored session as alive. */
    checkSession?(options: any): any;
  }

  interface SessionOptions {
    /** The service, e.g. 'https://api.example.com'. Only URLs under it are called with the session. */
    baseURL: string;
    /** Defaults to the global `wx`. */
    wx?: WxApi;
    /** true: send "Authorization: Bearer <token>" (the token from the login reply) instead of a Cookie. */
    useBearer?: boolean;
    /** Prefix of the wx storage keys: <storageKey>:cookies and <storageKey>:token. Default 'wx-session'. */
    storageKey?: string;
    /** wx.request timeout in milliseconds for calls that give none of their own. Default 10000. */
    timeout?: number;
    /**
     * Sent as X-WX-AppId on every call. Default: the mini program's own appid
     * (wx.getAccountInfoSync().miniProgram.appId), read once; with neither, no
     * header (the service's default app).
     */
    appId?: string;
    paths?: Partial<Paths>;
    /** The clock cookie expiry is judged by, in milliseconds since the epoch. Default Date.now. */
    now?: () => number;
  }

  /** The RequestTask wx.request returns (only what the client relies on, plus the usual listeners). */
  interface RequestTask {
    abort(): void;
    onHeadersReceived?(listener: (result: { header: Record<string, any>; cookies?: string[] }) => void): void;
    offHeadersReceived?(listener?: (...args: any[]) => void): void;
    onChunkReceived?(listener: (result: { data: ArrayBuffer }) => void): void;
    offChunkReceived?(listener?: (...args: any[]) => void): void;
  }

  /**
   * A call to the service. url, method, data and the session's Cookie or
   * Authorization header are the client's to manage; every other wx.request
   * option goes to wx.request as given (on the retry after a re-login too).
   */
  interface RequestOptions {
    /** A path under baseURL, or a full URL that starts with baseURL (anything else: 'invalid_url'). */
    url: string;
    /** Upper-cased before it is sent. Default 'GET'. */
    method?: string;
    data?: string | Record<string, any> | ArrayBuffer;
    /** Merged with the session's: its Cookie (cookie mode) or Authorization (bearer mode) wins. */
    header?: Record<string, string>;
    /** Milliseconds; default: the session's timeout. */
    timeout?: number;
    /** Default 'json'. The reply is read as the service's JSON whatever it says. */
    dataType?: string;
    responseType?: 'text' | 'arraybuffer';
    useHighPerformanceMode?: boolean;
    enableHttp2?: boolean;
    enableProfile?: boolean;
    enableQuic?: boolean;
    enableCache?: boolean;
    enableHttpDNS?: boolean;
    httpDNSServiceId?: string;
    enableChunked?: boolean;
    forceCellularNetwork?: boolean;
    /** The client owns the callbacks: the promise stands for them. */
    success?: never;
    fail?: never;
    complete?: never;
    /** Any other wx.request option, passed through untouched. */
    [option: string]: unknown;
  }

  /** What session.request returns: a Promise of the reply's `data`, with the request task. */
  interface RequestPromise<T> extends Promise<T> {
    /**
     * The RequestTask of this call's wx.request in flight (the retry's once it
     * is sent after a re-login); null when no wx.request was made or it
     * returned no task.
     */
    readonly task: RequestTask | null;
    /**
     * Aborts the wx.request in flight and rejects the promise with a
     * ServiceError 'aborted' (statusCode 0). During a re-login the shared
     * login goes on and the call is not retried. Does nothing once settled.
     */
    abort(): void;
  }

  /** The UploadTask wx.uploadFile returns (only what the client relies on, plus the usual listeners). */
  interface UploadTask {
    abort(): void;
    onProgressUpdate?(
      listener: (result: { progress: number; totalBytesSent: number; totalBytesExpectedToSend: number }) => void,
    ): void;
    offProgressUpdate?(listener?: (...args: any[]) => void): void;
    onHeadersReceived?(listener: (result: { header: Record<string, any> }) => void): void;
    offHeadersReceived?(listener?: (...args: any[]) => void): void;
  }

  /** What session.uploadAvatar returns: a Promise of the answer, with the upload task. */
  interface UploadPromise<T> extends Promise<T> {
    /** The UploadTask of this call's wx.uploadFile in flight (the retry's after a re-login), or null. */
    readonly task: UploadTask | null;
    /** Aborts the upload in flight and rejects with 'aborted', as RequestPromise.abort does. */
    abort(): void;
  }

  /**
   * Options of uploadAvatar: the file goes in the field 'file' to paths.avatar;
   * every other wx.uploadFile option goes through as given.
   */
  interface UploadOptions {
    /** Merged with the session's: its Cookie or Authorization and X-WX-AppId win; a Content-Type is dropped. */
    header?: Record<string, string>;
    /** Extra multipart fields. */
    formData?: Record<string, string | number>;
    /** Milliseconds; default: the app's networkTimeout.uploadFile. */
    timeout?: number;
    url?: never;
    filePath?: never;
    name?: never;
    /** The client owns the callbacks: the promise stands for them. */
    success?: never;
    fail?: never;
    complete?: never;
    [option: string]: unknown;
  }

  /** A user as the service returns it (GET /user/info, the binds, setProfile). */
  interface Profile {
    nickName: string | null;
    avatarUrl: string | null;
    gender: number | null;
    city: string | null;
    province: string | null;
    country: string | null;
    language: string | null;
    phoneNumber: string | null;
    purePhoneNumber: string | null;
    countryCode: string | null;
    /** 'pending' while an uploaded avatar waits for WeChat's check; null otherwise. */
    avatarReview: 'pending' | null;
  }

  /** What PUT /user/profile accepts (any subset). */
  interface ProfileFields {
    /** At most 32 characters; cannot be emptied. */
    nickName?: string;
    /** 0 unknown, 1, 2 (a form's '1' is accepted too). */
    gender?: 0 | 1 | 2 | '0' | '1' | '2';
    /** At most 64 characters each; '' or null clears the field. */
    city?: string | null;
    province?: string | null;
    country?: string | null;
    /** Other keys (a form's other inputs) are not sent. */
    [other: string]: unknown;
  }

  /** What uploadAvatar resolves to: the profile, and the URL the avatar will have once approved. */
  interface AvatarAnswer extends Profile {
    /** Set while WeChat checks the image (HTTP 202); null when it already was the avatar (200). */
    pendingAvatarUrl: string | null;
  }

  /** The data of a 422 content_risky / content_needs_review (err.data.data). */
  interface ContentVerdict {
    /** The field WeChat refused, e.g. 'nickName'. */
    field: string;
    /** WeChat's label (e.g. 20002 porn, 20006 illegal, 21000 other). */
    label: number;
  }

  interface LoginResult {
    /** The session's token (the same value as the cookie). */
    token: string;
    /** Seconds. */
    expiresIn: number;
  }

  /** A wx.getUserProfile / getUserInfo result, or a legacy getPhoneNumber e.detail. */
  interface SealedDetail {
    encryptedData?: string;
    iv?: string;
    rawData?: string;
    signature?: string;
    errMsg?: string;
  }

  /** The getPhoneNumber button's e.detail: `code` (current) or encryptedData/iv (legacy). */
  interface PhoneDetail extends SealedDetail {
    code?: string;
  }

  interface BindOptions {
    /**
     * After a 409 session_key_stale and the re-login: fresh data sealed under
     * the new key (e.g. a new wx.getUserProfile result); the bind is retried
     * once with it. When it fails, the ServiceError 'session_key_stale'
     * rejects with `refreshError` set.
     */
    refresh?: (error: ServiceError) => SealedDetail | PromiseLike<SealedDetail>;
  }

  interface Session {
    /** The last profile the service returned (/user/info, a bind, setProfile, uploadAvatar), or null. */
    user: Profile | null;
    /** Resolves to the reply's `data`; a 401 logs in once (shared) and retries once. */
    request<T = any>(options: RequestOptions): RequestPromise<T>;
    /** wx.login + POST paths.login; single-flight. */
    login(): Promise<LoginResult>;
    /** For App.onLaunch: checkSession or login, then GET paths.info; sets user, runs ready() callbacks. */
    launch(): Promise<Profile>;
    /** Calls fn(user) once the user is known, always asynchronously. */
    ready(fn: (user: Profile) => void): void;
    bindInfo(detail: SealedDetail, options?: BindOptions): Promise<Profile>;
    bindPhone(detail: PhoneDetail, options?: BindOptions): Promise<Profile>;
    /**
     * PUT paths.profile with fields' nickName, gender, city, province, country;
     * resolves to the profile and sets user. Rejects with 'content_risky' /
     * 'content_needs_review' (err.data.data: ContentVerdict), 'invalid_field',
     * 'wechat_visit_expired' (after one re-login and retry).
     */
    setProfile(fields: ProfileFields): Promise<Profile>;
    /**
     * wx.uploadFile of the chooseAvatar file (e.detail.avatarUrl) to paths.avatar.
     * With 202 the avatar is pending WeChat's check: avatarReview 'pending',
     * avatarUrl unchanged until approved (learn it with refresh()).
     */
    uploadAvatar(tempFilePath: string, options?: UploadOptions): UploadPromise<AvatarAnswer>;
    /** GET paths.info; resolves to the user and sets user. */
    refresh(): Promise<Profile>;
    check(): Promise<{ session: boolean; sessionKeyValid: boolean }>;
    /** Ends the session on the server (all: every session of the user) and forgets it here, whatever the reply. */
    logout(options?: { all?: boolean }): Promise<{ ended: number }>;
    /** DELETE paths.account; once deleted, forgets the session and user here as logout does. */
    deleteAccount(): Promise<{ deleted: true }>;
    /** Forgets the stored cookies and token. */
    clear(): void;
  }

  /**
   * The error every promise rejects with. Slugs made on this side, all with
   * statusCode 0 but bad_response: 'network_error', 'wx_login_failed',
   * 'invalid_detail' (a bind without data, an upload without a file),
   * 'invalid_url', 'aborted', 'bad_response'.
   */
  class ServiceError extends Error {
    constructor(statusCode: number, body?: unknown, header?: Record<string, any>);
    name: 'ServiceError';
    /** The HTTP status; 0 when there was no reply. */
    statusCode: number;
    /** The service's numeric code, or null. */
    code: number | null;
    /** The slug: see the "Errors" table of the service's README. */
    error: string;
    message: string;
    /** The reply body as received (null when there was none). */
    data: unknown;
    /** The reply headers, e.g. Retry-After ({} when there was no reply). */
    header: Record<string, any>;
    /** Set on a session_key_stale whose options.refresh failed: why it did. */
    refreshError?: unknown;
  }
}

export = createSession;
