// bullpen under PM2 (the specification's "Using PM2"), from the app directory:
//   pm2 start deploy/pm2/ecosystem.config.js && pm2 save
//   pm2 startup          # once, so the saved list comes back after a reboot
// Settings come from .env in `cwd` (bullpen reads it itself); `env` below only adds defaults.
const cwd = process.env.BULLPEN_HOME || "/opt/bullpen";
const bullpen = `${cwd}/.venv/bin/bullpen`;

module.exports = {
  apps: [
    {
      name: "bullpen-worker",
      script: bullpen,
      args: "worker",
      cwd,
      // bullpen is a Python program: PM2 must exec it, not load it into Node.
      interpreter: "none",
      // Several workers: raise this. Fork mode only; PM2's cluster mode is for Node servers.
      instances: 1,
      exec_mode: "fork",
      autorestart: true,
      restart_delay: 5000,
      // PM2 sends SIGINT by default; bullpen treats SIGINT like SIGTERM and finishes active
      // jobs for up to WORKER_SHUTDOWN_TIMEOUT_S (30 s), so wait longer before SIGKILL.
      kill_timeout: 45000,
      // Signal bullpen alone; it passes one stop request to each of its worker processes.
      treekill: false,
      env: {
        BULLPEN_VAR_DIR: `${cwd}/var`,
        PYTHONUNBUFFERED: "1",
      },
    },
    {
      // Refuses to start without WEB_AUTH_TOKEN in `cwd`/.env (behind a proxy every request
      // comes from 127.0.0.1); generate one with
      //   python -c 'import secrets; print(secrets.token_urlsafe(32))'
      // and set WEB_ALLOWED_HOSTS to the host name the proxy forwards.
      name: "bullpen-web",
      script: bullpen,
      args: "web",
      cwd,
      interpreter: "none",
      instances: 1,
      exec_mode: "fork",
      autorestart: true,
      restart_delay: 5000,
      kill_timeout: 30000,
      env: {
        BULLPEN_VAR_DIR: `${cwd}/var`,
        PYTHONUNBUFFERED: "1",
      },
    },
  ],
};
