/**
 * errors.js: ServiceError, the one error every promise of the client rejects
 * with, and localError for the slugs made on this side of the wire (status 0).
 */
'use strict';

function ServiceError(statusCode, body, header) {
  var reply = body && typeof body === 'object' ? body : {};
  var message = typeof reply.message === 'string' && reply.message ?
    reply.message : 'HTTP ' + statusCode;
  this.name = 'ServiceError';
  this.message = message;
  this.statusCode = statusCode;
  this.code = reply.code === undefined ? null : reply.code;
  this.error = typeof reply.error === 'string' && reply.error ? reply.error : 'bad_response';
  this.data = body === undefined ? null : body;
  this.header = header || {};
  if (typeof Error.captureStackTrace === 'function') {
    Error.captureStackTrace(this, ServiceError);
  } else {
    this.stack = new Error(message).stack;
  }
}
ServiceError.prototype = Object.create(Error.prototype);
ServiceError.prototype.constructor = ServiceError;
ServiceError.prototype.toString = function () {
  return 'ServiceError: ' + this.statusCode + ' ' + this.error + ': ' + this.message;
};

/** A ServiceError for a failure with no reply: statusCode 0, code null. */
function localError(slug, message) {
  return new ServiceError(0, { code: null, error: slug, message: message });
}

module.exports = {
  ServiceError: ServiceError,
  localError: localError
};
