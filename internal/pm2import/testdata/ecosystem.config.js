// The seed's pm2-ecosystem.config.js, as the article gives it.
module.exports = {
  apps: [
    {
      name: "api-server",
      script: "./server.js",
      instances: "max", // Use all CPU cores
      exec_mode: "cluster",

      // Environment variables
      env: {
        NODE_ENV: "development",
        PORT: 3000,
      },
      env_production: {
        NODE_ENV: "production",
        PORT: 3000,
      },

      // Advanced features
      max_memory_restart: "1G", // Restart if memory exceeds 1GB
      min_uptime: "10s", // Minimum uptime before considering app stable
      max_restarts: 10, // Maximum restarts within a time window
      autorestart: true,
      watch: false, // Disable in production

      // Logging
      error_file: "./logs/pm2-error.log",
      out_file: "./logs/pm2-out.log",
      log_date_format: "YYYY-MM-DD HH:mm:ss Z",
      merge_logs: true,

      // Graceful shutdown
      kill_timeout: 5000,
      wait_ready: true,
      listen_timeout: 10000,

      // Health monitoring
      instance_var: "INSTANCE_ID",

      // Advanced options
      cron_restart: "0 3 * * *", // Restart daily at 3 AM

      // Node.js args
      node_args: "--max-old-space-size=2048",
    },
  ],
};

