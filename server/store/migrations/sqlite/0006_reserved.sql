-- Reserved: another branch's migration 0006 lands here at merge (this file is then dropped).
SELECT 1;
