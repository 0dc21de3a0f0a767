const ms = require('ms');
exports.timeout = () => ms('2 minutes');
