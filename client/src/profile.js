/**
 * profile.js: the profile page WeChat wants since 2022, when getUserProfile
 * stopped giving names and faces. setProfile sends what the page collected
 * (<input type="nickname">, the region); uploadAvatar sends the file
 * <button open-type="chooseAvatar"> gave, through wx.uploadFile; refresh
 * reads the profile again, e.g. to learn WeChat's verdict on an avatar.
 */
'use strict';

// What PUT paths.profile accepts; other keys of the caller's object (a
// form's e.detail.value may hold more) are not sent.
var EDITABLE = ['nickName', 'gender', 'city', 'province', 'country'];

// WeChat checks content only for users who opened the mini program in the
// last two hours (errcode 61010); the service asks for a wx.login, whose
// code tells WeChat the user is here, and one retry.
var VISIT_EXPIRED = 'wechat_visit_expired';

/**
 * auth: from login.js ({run, request, setUser}); transport: from
 * transport.js; paths: the service's paths.
 */
function createProfile(auth, transport, paths) {
  var setUser = auth.setUser;

  function setProfile(fields) {
    var body = {};
    for (var i = 0; i < EDITABLE.length; i++) {
      var name = EDITABLE[i];
      if (fields && fields[name] !== undefined) {
        body[name] = fields[name];
      }
    }
    return auth.run(transport.send, { url: paths.profile, method: 'PUT', data: body }, VISIT_EXPIRED)
      .then(function (profile) {
        setUser(profile);
        return profile;
      });
  }

  /**
   * tempFilePath: the chooseavatar event's e.detail.avatarUrl (a temporary
   * file, not a URL anyone else can open). options: header, formData,
   * timeout and any other wx.uploadFile option. The promise carries the
   * UploadTask (task) and abort(), as request()'s does.
   */
  function uploadAvatar(tempFilePath, options) {
    var call = {};
    for (var name in options || {}) {
      if (Object.prototype.hasOwnProperty.call(options, name)) {
        call[name] = options[name];
      }
    }
    call.url = paths.avatar;
    call.filePath = tempFilePath;
    call.name = 'file';
    var upload = auth.run(transport.upload, call, VISIT_EXPIRED);
    // Registered before the caller's own then(): session.user is current
    // when the page's callback runs.
    upload.then(function (answer) {
      if (answer && typeof answer === 'object') {
        setUser(profileOf(answer));
      }
    }, function () {
      // the caller's promise carries the error
    });
    return upload;
  }

  /** The answer of an upload without pendingAvatarUrl: the profile itself. */
  function profileOf(answer) {
    var profile = {};
    for (var name in answer) {
      if (Object.prototype.hasOwnProperty.call(answer, name) && name !== 'pendingAvatarUrl') {
        profile[name] = answer[name];
      }
    }
    return profile;
  }

  function refresh() {
    return auth.request({ url: paths.info, method: 'GET' }).then(function (user) {
      setUser(user);
      return user;
    });
  }

  return {
    setProfile: setProfile,
    uploadAvatar: uploadAvatar,
    refresh: refresh
  };
}

module.exports = createProfile;
