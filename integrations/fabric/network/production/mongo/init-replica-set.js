// One-shot job (mongo-init in docker-compose.yml, run by `mongosh --nodb`):
// initiates replica set rs0 over mongo1..3 and creates one database user per
// medshare org. Idempotent: it runs on every `docker compose up`.
//
// Keyfile auth is on, so every member enforces access control. mongo1 creates the
// root user on its first start (MONGO_INITDB_ROOT_*; the image's entrypoint drops
// --replSet and --keyFile for that step); mongo2 and mongo3 start empty and get
// the users through initial sync. Passwords are read from mounted secrets, never
// from the command line.
const fs = require('fs');

const secret = (name) => fs.readFileSync('/run/secrets/' + name, 'utf8').trim();
const rootURI = (host) =>
  'mongodb://root:' + encodeURIComponent(secret('mongo_root_password')) +
  '@' + host + '/admin?authSource=admin&directConnection=true';

const members = ['mongo1:27017', 'mongo2:27017', 'mongo3:27017'];
// One user per org, with readWrite on that org's database only.
const orgs = [
  { user: 'medshare-hospital', db: 'medshare_hospital', secret: 'mongo_hospital_password' },
  { user: 'medshare-insurer', db: 'medshare_insurer', secret: 'mongo_insurer_password' },
];

function sleepUntil(what, ok, seconds) {
  for (let i = 0; i < seconds; i++) {
    try {
      if (ok()) return;
    } catch (e) {
      // not yet: keep polling
    }
    sleep(1000);
  }
  throw new Error('timed out waiting for ' + what);
}

// mongo1 may still be in its first-start initdb phase (a loopback-only mongod
// that restarts), so connecting is retried.
let conn;
sleepUntil('mongo1', () => {
  conn = new Mongo(rootURI(members[0]));
  return conn.getDB('admin').runCommand({ ping: 1 }).ok === 1;
}, 120);
const admin = conn.getDB('admin');

let status;
try {
  status = admin.runCommand({ replSetGetStatus: 1 });
} catch (e) {
  status = { ok: 0, code: e.code, errmsg: e.message };
}
if (status.ok !== 1 && status.code === 94 /* NotYetInitialized */) {
  print('mongo-init: initiating rs0');
  const res = admin.runCommand({
    replSetInitiate: {
      _id: 'rs0',
      members: members.map((host, i) => ({ _id: i, host: host, priority: i === 0 ? 2 : 1 })),
    },
  });
  if (res.ok !== 1) throw new Error('replSetInitiate: ' + tojson(res));
} else if (status.ok !== 1) {
  throw new Error('replSetGetStatus: ' + tojson(status));
} else {
  print('mongo-init: rs0 already initiated');
}

sleepUntil('a primary', () => admin.runCommand({ hello: 1 }).isWritablePrimary === true, 120);
sleepUntil('all members healthy', () => {
  const s = admin.runCommand({ replSetGetStatus: 1 });
  return s.members.length === members.length && s.members.every((m) => m.health === 1 && (m.state === 1 || m.state === 2));
}, 300);

for (const org of orgs) {
  const db = conn.getDB(org.db);
  const pwd = secret(org.secret);
  const roles = [{ role: 'readWrite', db: org.db }];
  if (db.getUser(org.user) === null) {
    db.createUser({ user: org.user, pwd: pwd, roles: roles }, { w: 'majority' });
    print('mongo-init: created user ' + org.user);
  } else {
    // Keep the user in step with its secret (password rotation).
    db.updateUser(org.user, { pwd: pwd, roles: roles }, { w: 'majority' });
    print('mongo-init: updated user ' + org.user);
  }
}
print('mongo-init: done');
