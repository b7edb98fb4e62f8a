"""The service core of the ODR platform: accounts, cases, access policy, audit, register, i18n."""
